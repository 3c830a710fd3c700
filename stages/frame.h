// Frames as the post and encode stages exchange them: packed 8-bit RGB (RGB24), full range,
// BT.709 primaries (sRGB-like display-referred values, as the VAE produces them). No LibTorch here.
#pragma once
#include <cstdint>
#include <vector>

namespace clipgen::stages {

struct Frame {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3 bytes, row-major, no padding
  Frame() = default;
  Frame(int w, int h) : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3) {}
  uint8_t* pixel(int x, int y) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* pixel(int x, int y) const { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
};

}  // namespace clipgen::stages
