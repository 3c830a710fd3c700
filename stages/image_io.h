// Still images as stages::Frame: decoding any image libav reads (PNG, JPEG, ...) to RGB24, and writing
// a Frame as a PNG file atomically (temporary name, then rename — core/fs.h). Used for init images,
// keyframe dumps and contact sheets.
#pragma once
#include <filesystem>

#include "stages/frame.h"

namespace clipgen::stages {

// Decodes the first frame of `file` and converts it to packed RGB24, full range (JPEG/YUV sources use
// their own matrix — BT.601 for JPEG — as libswscale reads it from the file; an alpha channel is
// dropped, not composited). Throws EncodeError
// naming the file when it cannot be read or decoded.
Frame read_image(const std::filesystem::path& file);

// Encodes `frame` as an 8-bit RGB PNG and writes it to `file` atomically. Throws EncodeError.
void write_png(const Frame& frame, const std::filesystem::path& file);

}  // namespace clipgen::stages
