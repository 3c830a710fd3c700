#include "models/clip_image_preprocess.h"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/io/diffusers_folder.h"

namespace clipgen {
namespace F = torch::nn::functional;

CLIPImageNormalization CLIPImageNormalization::from_json(const nlohmann::json& cfg, const std::string& source) {
  CLIPImageNormalization n;
  auto read3 = [&](const char* key, std::array<double, 3>& out) {
    if (!cfg.contains(key)) return;
    const auto& v = cfg[key];
    if (!v.is_array() || v.size() != 3 || !std::all_of(v.begin(), v.end(), [](const auto& x) { return x.is_number(); }))
      throw UnsupportedError(source + ": " + key + " must be a list of 3 numbers (got " + v.dump() + ")");
    for (size_t i = 0; i < 3; ++i) out[i] = v[i].get<double>();
  };
  read3("image_mean", n.mean);
  read3("image_std", n.std);
  for (double s : n.std)
    if (s == 0) throw UnsupportedError(source + ": image_std must not contain 0");
  if (cfg.contains("crop_size")) {
    const auto& c = cfg["crop_size"];
    if (c.is_number_integer()) n.size = c.get<int64_t>();
    else if (c.is_object() && c.contains("height") && c.contains("width")) {
      if (c["height"] != c["width"]) throw UnsupportedError(source + ": crop_size must be square (got " + c.dump() + ")");
      n.size = c["height"].get<int64_t>();
    }
  }
  if (n.size <= 0) throw UnsupportedError(source + ": crop_size must be positive");
  return n;
}

CLIPImageNormalization CLIPImageNormalization::from_file(const std::filesystem::path& p) {
  return from_json(io::read_json(p), p.string());
}

namespace {

// diffusers' _gaussian: normalised 1-D Gaussian of `k` taps (float32 like the input).
at::Tensor gaussian_kernel(int64_t k, double sigma, const at::TensorOptions& o) {
  auto s = torch::tensor({static_cast<float>(sigma)}, o);  // sigma is stored in the input dtype first
  auto x = torch::arange(k, o) - static_cast<double>(k / 2);
  if (k % 2 == 0) x = x + 0.5;
  auto g = torch::exp(-x.pow(2.0) / (2 * s.pow(2.0)));
  return g / g.sum(-1, true);
}

// Depthwise convolution of every channel with `kernel` [kh, kw], reflect-padded to keep the size
// (diffusers' _filter2d with _compute_padding: front = (k−1)//2, rear = the rest).
at::Tensor filter2d(const at::Tensor& x, const at::Tensor& kernel) {
  const int64_t c = x.size(1), kh = kernel.size(0), kw = kernel.size(1);
  const int64_t ph = (kh - 1) / 2, pw = (kw - 1) / 2;
  auto padded = F::pad(x, F::PadFuncOptions({pw, kw - 1 - pw, ph, kh - 1 - ph}).mode(torch::kReflect));
  auto w = kernel.view({1, 1, kh, kw}).expand({c, 1, kh, kw}).contiguous();  // [C, 1, kh, kw]
  return F::conv2d(padded, w, F::Conv2dFuncOptions().groups(c));
}

}  // namespace

at::Tensor resize_with_antialiasing(const at::Tensor& x, int64_t out_h, int64_t out_w) {
  if (x.dim() != 4) throw UsageError("resize_with_antialiasing: expected [N, C, H, W]");
  const int64_t h = x.size(2), w = x.size(3);
  const double fy = static_cast<double>(h) / out_h, fx = static_cast<double>(w) / out_w;
  const double sy = std::max((fy - 1.0) / 2.0, 0.001), sx = std::max((fx - 1.0) / 2.0, 0.001);
  int64_t ky = static_cast<int64_t>(std::max(2.0 * 2 * sy, 3.0)), kx = static_cast<int64_t>(std::max(2.0 * 2 * sx, 3.0));
  if (ky % 2 == 0) ++ky;
  if (kx % 2 == 0) ++kx;
  auto o = x.options();
  auto gx = gaussian_kernel(kx, sx, o);  // [kx]
  auto gy = gaussian_kernel(ky, sy, o);  // [ky]
  auto blurred = filter2d(filter2d(x, gx.view({1, kx})), gy.view({ky, 1}));  // along W, then along H
  return F::interpolate(blurred, F::InterpolateFuncOptions()
                                     .size(std::vector<int64_t>{out_h, out_w})
                                     .mode(torch::kBicubic)
                                     .align_corners(true));
}

at::Tensor svd_clip_preprocess(const at::Tensor& images01, const CLIPImageNormalization& norm) {
  if (images01.dim() != 4 || images01.size(1) != 3) throw UsageError("svd_clip_preprocess: expected [N, 3, H, W] images");
  auto x = images01.to(torch::kFloat) * 2.0 - 1.0;
  x = resize_with_antialiasing(x, norm.size, norm.size);
  x = (x + 1.0) / 2.0;
  auto o = x.options();
  auto mean = torch::tensor({static_cast<float>(norm.mean[0]), static_cast<float>(norm.mean[1]), static_cast<float>(norm.mean[2])}, o)
                  .view({1, 3, 1, 1});
  auto stdv = torch::tensor({static_cast<float>(norm.std[0]), static_cast<float>(norm.std[1]), static_cast<float>(norm.std[2])}, o)
                  .view({1, 3, 1, 1});
  return (x - mean) / stdv;
}

at::Tensor svd_clip_preprocess_uint8_hwc(const at::Tensor& hwc, const CLIPImageNormalization& norm) {
  if (hwc.dim() != 3 || hwc.size(2) != 3 || hwc.scalar_type() != torch::kUInt8)
    throw UsageError("svd_clip_preprocess_uint8_hwc: expected a uint8 [H, W, 3] image");
  auto x = hwc.to(torch::kFloat).div(255.0f).permute({2, 0, 1}).unsqueeze(0).contiguous();  // [1, 3, H, W]
  return svd_clip_preprocess(x, norm);
}

}  // namespace clipgen
