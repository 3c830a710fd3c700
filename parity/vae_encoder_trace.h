// Shared by the VAE fixture runners (parity/run_vae.cpp, parity/run_svd.cpp): runs a VAE Encoder
// step by step so every hooked submodule output in intermediates.safetensors can be compared.
#pragma once
#include "models/vae.h"
#include "parity/fixture.h"

namespace clipgen::parity {

// conv_in → down_blocks.i → mid_block → conv_out, comparing "encoder.*" intermediates; returns the
// encoder output (before quant_conv).
at::Tensor trace_vae_encoder(FixtureContext& ctx, EncoderImpl& enc, const at::Tensor& image);

}  // namespace clipgen::parity
