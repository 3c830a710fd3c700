// Fixture runner for StableDiffusionPipeline (pipelines/stable_diffusion): the keyframe stage with the
// fixture's explicit latents must reproduce every recorded intermediate and the final image.
#include <torch/torch.h>

#include "models/io/diffusers_folder.h"
#include "parity/fixture.h"
#include "stages/keyframe.h"

namespace clipgen::parity {
namespace fs = std::filesystem;

void register_sd_pipeline_runners() {
  runners()["StableDiffusionPipeline"] = [](FixtureContext& ctx) {
    const auto& fx = ctx.fixture();
    const auto& comp = fx["components"];
    auto dir = [&](const char* name) { return fs::weakly_canonical(ctx.dir() / comp[name].get<std::string>()); };
    stages::SDComponentPaths p;
    p.tokenizer = dir("tokenizer");
    p.text_encoder = dir("text_encoder");
    p.unet = dir("unet");
    p.vae = dir("vae");
    p.scheduler_config = ctx.dir() / fx["scheduler"]["config"].get<std::string>();
    auto model = stages::load_sd_components(p, ctx.dir().string());
    model.to(ctx.device(), ctx.dtype());  // the stage moves (and casts) its inputs to the model's
    ctx.use_device();
    ctx.use_precision();

    // The tokenizer must give the recorded ids.
    auto ids = model.tokenizer->encode_padded(fx["prompt"].get<std::string>());
    ctx.compare("prompt_input_ids", torch::tensor(ids.input_ids, torch::kLong).unsqueeze(0),
                ctx.input("prompt_input_ids"), Tolerance::exact());
    auto nids = model.tokenizer->encode_padded(fx["negative_prompt"].get<std::string>());
    ctx.compare("negative_prompt_input_ids", torch::tensor(nids.input_ids, torch::kLong).unsqueeze(0),
                ctx.input("negative_prompt_input_ids"), Tolerance::exact());

    // pipe(prompt, negative_prompt, height=64, width=64, num_inference_steps=4, guidance_scale=7.5, latents=...)
    stages::KeyframeRequest r;
    r.prompt = fx["prompt"].get<std::string>();
    r.negative_prompt = fx["negative_prompt"].get<std::string>();
    const auto& latents = ctx.input("latents");
    r.height = latents.size(2) * model.vae->downscale_factor();
    r.width = latents.size(3) * model.vae->downscale_factor();
    r.steps = 4;
    r.guidance = 7.5;
    r.sampler = "";  // the pipeline's own scheduler
    r.latents = latents;
    std::map<std::string, at::Tensor> got;
    stages::KeyframeCallbacks cb;
    cb.trace = [&](const std::string& name, const at::Tensor& t) { got[name] = t.detach().clone(); };
    stages::generate_keyframe(model, r, cb);

    if (ctx.dtype() != torch::kFloat) {  // reduced precision: the end results, within the stated bounds
      ctx.compare("final_latents", got.at("final_latents"), Tolerance::reduced_latents());
      ctx.compare("image", got.at("image"), Tolerance::reduced_image());
      return;
    }
    for (const auto& [name, ref] : ctx.outputs()) {
      auto it = got.find(name);
      if (it == got.end()) {
        ctx.fail(name, "not produced by the keyframe stage");
        continue;
      }
      const bool schedule = name == "timesteps" || name == "sigmas" || name == "init_noise_sigma" ||
                            name.rfind("unet_timestep_", 0) == 0;
      ctx.compare(name, it->second, ref, schedule ? Tolerance::schedule() : Tolerance::pipeline());
    }
  };
}

}  // namespace clipgen::parity
