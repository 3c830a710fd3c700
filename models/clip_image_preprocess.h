// The CLIP image preprocessing of diffusers' StableVideoDiffusionPipeline._encode_image (0.27.2):
//   x = image in [0, 1] (NCHW float32; PIL/uint8 input: uint8 / 255)
//   x = 2x − 1
//   x = _resize_with_antialiasing(x, (224, 224)):
//         per axis σ = max((in/out − 1)/2, 0.001), kernel size int(max(4σ, 3)) made odd, normalised
//         Gaussian exp(−(i − k//2)²/(2σ²)); depthwise blur along W then H with reflect padding; then
//         bicubic interpolation with align_corners=True
//   x = (x + 1)/2
//   x = (x − mean)/std   (CLIPImageProcessor with do_normalize only; mean/std from preprocessor_config.json)
#pragma once
#include <array>
#include <filesystem>

#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

namespace clipgen {

struct CLIPImageNormalization {
  std::array<double, 3> mean{0.48145466, 0.4578275, 0.40821073};
  std::array<double, 3> std{0.26862954, 0.26130258, 0.27577711};
  int64_t size = 224;  // crop_size (SVD resizes straight to size × size)

  // Reads image_mean, image_std and crop_size/size from a CLIPImageProcessor preprocessor_config.json.
  static CLIPImageNormalization from_json(const nlohmann::json& cfg, const std::string& source = "preprocessor_config.json");
  static CLIPImageNormalization from_file(const std::filesystem::path& preprocessor_config_json);
};

// diffusers' _resize_with_antialiasing (bicubic, align_corners=True). x: [N, C, H, W] floating.
at::Tensor resize_with_antialiasing(const at::Tensor& x, int64_t out_h, int64_t out_w);

// SVD's CLIP preprocessing of images in [0, 1], [N, 3, H, W] float → [N, 3, size, size] pixel_values.
at::Tensor svd_clip_preprocess(const at::Tensor& images01, const CLIPImageNormalization& norm = {});

// The same for one uint8 image [H, W, 3] (as a PIL image / stages::Frame holds it) → [1, 3, size, size].
at::Tensor svd_clip_preprocess_uint8_hwc(const at::Tensor& hwc_uint8, const CLIPImageNormalization& norm = {});

}  // namespace clipgen
