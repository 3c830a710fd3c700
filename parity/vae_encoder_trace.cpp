#include "parity/vae_encoder_trace.h"

#include <torch/torch.h>

#include "models/blocks/unet_2d_blocks.h"

namespace clipgen::parity {

at::Tensor trace_vae_encoder(FixtureContext& ctx, EncoderImpl& enc, const at::Tensor& image) {
  auto h = enc.conv_in(image);
  ctx.compare_intermediate("encoder.conv_in", h);
  for (size_t i = 0; i < enc.down_blocks->size(); ++i) {
    h = enc.down_blocks[i]->as<blocks::DownEncoderBlock2DImpl>()->forward(h);
    ctx.compare_intermediate("encoder.down_blocks." + std::to_string(i), h);
  }
  h = enc.mid_block(h);
  ctx.compare_intermediate("encoder.mid_block", h);
  h = enc.conv_out(at::silu(enc.conv_norm_out(h)));
  ctx.compare_intermediate("encoder.conv_out", h);
  return h;
}

}  // namespace clipgen::parity
