// Human-readable text for the CLI: `clipgen presets`, `clipgen presets NAME`, `clipgen validate`.
// Plain text (no colour, no trailing spaces); each function returns complete lines ending in '\n'.
#pragma once
#include <string>

#include "configs/preset.h"
#include "configs/shot.h"

namespace clipgen::configs {

// One row per preset: name, raster, fps, codec/profile, pix_fmt, rate control, container, audio, max duration.
std::string format_preset_table(const PresetRegistry& presets);

// Every field of one preset, with the safe zones in pixels and percent and the source of each figure.
std::string format_preset_detail(const Preset& preset);

// A fully resolved shot as readable YAML-like text (every default filled in, paths absolute).
std::string format_shot(const Shot& shot);

// "30", "29.97", "24000/1001 (23.976)" style frame rate text.
std::string format_rate(Rational fps);

}  // namespace clipgen::configs
