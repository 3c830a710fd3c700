// Fixture runners for the VAEs (fixtures/vae/*): AutoencoderKL (posterior mean/logvar/std/moments,
// posterior sample with the recorded noise, decode, reconstruction, encoder intermediates) and
// AutoencoderTiny (encode, decode, forward with uint8 latent quantisation).
#include <torch/torch.h>

#include "models/autoencoder_kl.h"
#include "models/autoencoder_tiny.h"
#include "models/io/state_dict.h"
#include "parity/fixture.h"
#include "parity/vae_encoder_trace.h"

namespace clipgen::parity {

void register_vae_runners() {
  runners()["AutoencoderKL"] = [](FixtureContext& ctx) {
    torch::NoGradGuard ng;
    auto cfg = AutoencoderKLConfig::from_json(ctx.config(), (ctx.dir() / "config.json").string());
    AutoencoderKL vae{nullptr};
    {
      blocks::EmptyInitGuard g;
      vae = AutoencoderKL(cfg);
    }
    io::load_weights_into(*vae, ctx.weights_path());
    vae->eval();
    vae->to(ctx.device());
    const auto image = ctx.device_input("image");
    // Encoder, step by step so that every hooked submodule output can be compared.
    auto h = trace_vae_encoder(ctx, *vae->encoder, image);
    if (vae->quant_conv) {
      h = vae->quant_conv(h);
      ctx.compare_intermediate("quant_conv", h);
    }
    // The model's own encode() must agree with the step-by-step path.
    auto post = vae->encode(image);
    ctx.compare("latent_moments", post.moments, Tolerance::model());
    ctx.compare("latent_mean", post.mean, Tolerance::model());
    ctx.compare("latent_logvar", post.logvar, Tolerance::model());
    ctx.compare("latent_std", post.std, Tolerance::model());
    ctx.compare("posterior_sample", post.sample(ctx.device_input("posterior_noise")), Tolerance::model());
    ctx.compare("decoded", vae->decode(ctx.device_input("latents")), Tolerance::model());
    ctx.compare("reconstruction", vae->forward(image, false), Tolerance::model());
  };

  runners()["AutoencoderTiny"] = [](FixtureContext& ctx) {
    torch::NoGradGuard ng;
    auto cfg = AutoencoderTinyConfig::from_json(ctx.config(), (ctx.dir() / "config.json").string());
    AutoencoderTiny taesd{nullptr};
    {
      blocks::EmptyInitGuard g;
      taesd = AutoencoderTiny(cfg);
    }
    io::load_weights_into(*taesd, ctx.weights_path());
    taesd->eval();
    taesd->to(ctx.device());
    const auto image = ctx.device_input("image");
    auto lat = taesd->encode(image);
    ctx.compare_intermediate("encoder", lat);
    ctx.compare("latents_out", lat, Tolerance::model());
    ctx.compare("decoded", taesd->decode(ctx.device_input("latents")), Tolerance::model());
    ctx.compare("forward_sample", taesd->forward(image), Tolerance::model());
  };
}

}  // namespace clipgen::parity
