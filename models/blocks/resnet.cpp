#include "models/blocks/resnet.h"

#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::blocks {

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetBlock2DOptions& o) : opt_(o) {
  if (opt_.out_channels <= 0) opt_.out_channels = opt_.in_channels;
  if (opt_.groups_out <= 0) opt_.groups_out = opt_.groups;
  if (opt_.conv_2d_out_channels <= 0) opt_.conv_2d_out_channels = opt_.out_channels;
  check_activation(opt_.non_linearity, "act_fn");
  if (opt_.time_embedding_norm != "default" && opt_.time_embedding_norm != "scale_shift")
    throw UnsupportedError("unsupported resnet_time_scale_shift=\"" + opt_.time_embedding_norm + "\"");
  const int64_t cin = opt_.in_channels, cout = opt_.out_channels, c2 = opt_.conv_2d_out_channels;

  norm1 = register_module("norm1", torch::nn::GroupNorm(torch::nn::GroupNormOptions(opt_.groups, cin).eps(opt_.eps)));
  conv1 = register_module("conv1", Conv2d(Conv2dOptions{cin, cout, 3, 1, 1}));
  if (opt_.temb_channels > 0) {
    const int64_t proj = opt_.time_embedding_norm == "scale_shift" ? 2 * cout : cout;
    time_emb_proj = register_module("time_emb_proj", Linear(opt_.temb_channels, proj));
  }
  norm2 = register_module("norm2", torch::nn::GroupNorm(torch::nn::GroupNormOptions(opt_.groups_out, cout).eps(opt_.eps)));
  conv2 = register_module("conv2", Conv2d(Conv2dOptions{cout, c2, 3, 1, 1}));
  const bool shortcut = opt_.use_in_shortcut.value_or(cin != c2);
  if (shortcut) {
    const int64_t k = opt_.conv_shortcut ? 3 : 1;
    conv_shortcut =
        register_module("conv_shortcut", Conv2d(Conv2dOptions{cin, c2, k, 1, k == 3 ? 1 : 0, opt_.conv_shortcut_bias}));
  }
}

at::Tensor ResnetBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  const auto& act = opt_.non_linearity;
  auto h = activation(act, norm1(x));
  h = conv1(h);
  at::Tensor t;
  if (time_emb_proj) {
    TORCH_CHECK(temb.defined(), "ResnetBlock2D: this block has time_emb_proj but no temb was given");
    t = time_emb_proj(opt_.skip_time_act ? temb : activation(act, temb)).unsqueeze(-1).unsqueeze(-1);  // [B, C(·2), 1, 1]
  }
  if (opt_.time_embedding_norm == "default") {
    if (t.defined()) h = h + t;
    h = norm2(h);
  } else {
    h = norm2(h);
    if (t.defined()) {
      auto ss = t.chunk(2, 1);  // scale, shift: [B, C, 1, 1] each
      h = h * (1 + ss[0]) + ss[1];
    }
  }
  h = conv2(activation(act, h));
  auto skip = conv_shortcut ? conv_shortcut(x) : x;
  auto out = skip + h;
  if (opt_.output_scale_factor != 1.0) out = out / opt_.output_scale_factor;
  return out;
}

}  // namespace clipgen::blocks
