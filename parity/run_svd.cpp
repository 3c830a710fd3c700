// Fixture runners for Stable Video Diffusion's models:
//   UNetSpatioTemporalConditionModel (fixtures/unet_spatiotemporal): every `unet(sample, timestep_j,
//     encoder_hidden_states, added_time_ids)` call of fixture.json and every stored intermediate (top-level
//     submodule outputs during the timestep_0 call), at Tolerance::model().
//   AutoencoderKLTemporalDecoder (fixtures/vae_temporal): posterior mean/logvar/std, encoder intermediates,
//     decode(latents, num_frames), at Tolerance::model().
#include <torch/torch.h>

#include "models/autoencoder_kl_temporal_decoder.h"
#include "models/io/state_dict.h"
#include "models/unet_spatio_temporal_condition.h"
#include "parity/fixture.h"
#include "parity/vae_encoder_trace.h"

namespace clipgen::parity {

void register_svd_runners() {
  runners()["UNetSpatioTemporalConditionModel"] = [](FixtureContext& ctx) {
    torch::NoGradGuard ng;
    auto cfg = UNetSpatioTemporalConditionConfig::from_json(ctx.config(), (ctx.dir() / "config.json").string());
    UNetSpatioTemporalConditionModel unet{nullptr};
    {
      blocks::EmptyInitGuard g;
      unet = UNetSpatioTemporalConditionModel(cfg);
    }
    io::load_weights_into(*unet, ctx.weights_path());
    unet->eval();
    unet->to(ctx.device());
    const auto& in = ctx.inputs();
    int calls = 0;
    for (int j = 0;; ++j) {
      const std::string tname = "timestep_" + std::to_string(j);
      if (!in.count(tname)) break;
      UNetSpatioTemporalTrace trace;
      if (j == 0)
        trace = [&](const std::string& name, const at::Tensor& v) { ctx.compare_intermediate(name, v); };
      auto out = unet->forward(ctx.device_input("sample"), ctx.to_device(in.at(tname)),
                               ctx.device_input("encoder_hidden_states"), ctx.device_input("added_time_ids"), trace);
      ctx.compare("sample_" + std::to_string(j), out, Tolerance::model());
      ++calls;
    }
    if (calls == 0) ctx.fail("calls", "fixture has no timestep_0 input");
  };

  runners()["AutoencoderKLTemporalDecoder"] = [](FixtureContext& ctx) {
    torch::NoGradGuard ng;
    auto cfg = AutoencoderKLTemporalDecoderConfig::from_json(ctx.config(), (ctx.dir() / "config.json").string());
    AutoencoderKLTemporalDecoder vae{nullptr};
    {
      blocks::EmptyInitGuard g;
      vae = AutoencoderKLTemporalDecoder(cfg);
    }
    io::load_weights_into(*vae, ctx.weights_path());
    vae->eval();
    vae->to(ctx.device());
    const auto image = ctx.device_input("image");
    // Encoder step by step, so that every hooked submodule output can be compared.
    auto h = trace_vae_encoder(ctx, *vae->encoder, image);
    ctx.compare_intermediate("quant_conv", vae->quant_conv(h));
    // The model's own encode() must agree with the step-by-step path.
    auto post = vae->encode(image);
    ctx.compare("latent_mean", post.mean, Tolerance::model());
    ctx.compare("latent_logvar", post.logvar, Tolerance::model());
    ctx.compare("latent_std", post.std, Tolerance::model());
    const int64_t num_frames = ctx.input("num_frames").item<int64_t>();
    ctx.compare("decoded", vae->decode(ctx.device_input("latents"), num_frames), Tolerance::model());
  };
}

}  // namespace clipgen::parity
