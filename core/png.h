// A minimal PNG writer (8-bit RGB, stored deflate blocks: no compression library needed), for the
// training library's loss plots and sample grids, which must not depend on libav. Written atomically.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace clipgen {

// rgb: packed RGB24, width × height × 3 bytes.
std::string encode_png_rgb(const uint8_t* rgb, int width, int height);
void write_png_rgb(const std::filesystem::path& path, const uint8_t* rgb, int width, int height);

}  // namespace clipgen
