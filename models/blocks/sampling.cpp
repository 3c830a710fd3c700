#include "models/blocks/sampling.h"

#include <torch/torch.h>

namespace clipgen::blocks {

Downsample2DImpl::Downsample2DImpl(const Downsample2DOptions& o) : opt_(o) {
  if (opt_.out_channels <= 0) opt_.out_channels = opt_.channels;
  if (opt_.use_conv) {
    conv = register_module("conv", Conv2d(Conv2dOptions{opt_.channels, opt_.out_channels, opt_.kernel_size, 2,
                                                        opt_.padding, opt_.bias}));
  } else {
    TORCH_CHECK(opt_.channels == opt_.out_channels, "Downsample2D: avg-pool needs channels == out_channels");
  }
}

at::Tensor Downsample2DImpl::forward(const at::Tensor& x) {
  if (!opt_.use_conv) return at::avg_pool2d(x, {2, 2}, {2, 2});
  if (opt_.padding == 0) {
    // Asymmetric padding (right and bottom by one) as the LDM VAE encoder does.
    return conv(at::constant_pad_nd(x, {0, 1, 0, 1}, 0));
  }
  return conv(x);
}

Upsample2DImpl::Upsample2DImpl(const Upsample2DOptions& o) : opt_(o) {
  if (opt_.out_channels <= 0) opt_.out_channels = opt_.channels;
  if (opt_.use_conv)
    conv = register_module("conv", Conv2d(Conv2dOptions{opt_.channels, opt_.out_channels, opt_.kernel_size, 1,
                                                        opt_.padding, opt_.bias}));
}

at::Tensor Upsample2DImpl::forward(const at::Tensor& x, const std::optional<std::vector<int64_t>>& output_size) {
  at::Tensor h = x;
  if (opt_.interpolate) {
    if (output_size)
      h = at::upsample_nearest2d(x, *output_size);
    else
      h = at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2}, 2.0, 2.0);
  }
  return opt_.use_conv ? conv(h) : h;
}

}  // namespace clipgen::blocks
