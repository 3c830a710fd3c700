// Fixture runner for StableVideoDiffusionPipeline (pipelines/stable_video_diffusion): the temporal stage with
// the fixture's explicit latents and recorded noise-augmentation noise must reproduce every recorded
// intermediate and the output frames (Tolerance::pipeline(); the schedule at Tolerance::schedule()).
#include <torch/torch.h>

#include "parity/fixture.h"
#include "stages/temporal.h"

namespace clipgen::parity {
namespace fs = std::filesystem;

void register_svd_pipeline_runners() {
  runners()["StableVideoDiffusionPipeline"] = [](FixtureContext& ctx) {
    const auto& fx = ctx.fixture();
    const auto& comp = fx["components"];
    auto dir = [&](const char* name) { return fs::weakly_canonical(ctx.dir() / comp[name].get<std::string>()); };
    stages::SVDComponentPaths p;
    p.image_encoder = dir("image_encoder");
    p.feature_extractor = dir("feature_extractor");
    p.unet = dir("unet");
    p.vae = dir("vae");
    p.scheduler_config = ctx.dir() / fx["scheduler"]["config"].get<std::string>();
    auto model = stages::load_svd_components(p, ctx.dir().string());
    model.to(ctx.device(), ctx.dtype());  // the stage moves (and casts) its inputs to the model's
    ctx.use_device();
    ctx.use_precision();

    // pipe(image, height, width, num_frames, num_inference_steps, min/max_guidance_scale, fps,
    //      motion_bucket_id, noise_aug_strength, decode_chunk_size, generator, latents)
    const auto& prm = fx["params"];
    stages::SegmentRequest r;
    r.image = ctx.input("image_uint8_hwc");
    r.height = prm["hw"][0].get<int64_t>();
    r.width = prm["hw"][1].get<int64_t>();
    r.num_frames = prm["num_frames"].get<int>();
    r.steps = prm["steps"].get<int>();
    r.min_guidance = prm["min_guidance"].get<double>();
    r.max_guidance = prm["max_guidance"].get<double>();
    r.fps = prm["fps"].get<int>();
    r.motion_bucket_id = prm["motion_bucket_id"].get<int>();
    r.noise_aug_strength = prm["noise_aug_strength"].get<double>();
    r.decode_chunk = prm["decode_chunk_size"].get<int>();
    r.sampler = "";  // the pipeline's own scheduler
    r.seed = fx.value("generator_seed", uint64_t{0});
    r.latents = ctx.input("latents");
    r.noise_aug_noise = ctx.input("noise_aug_noise");
    std::map<std::string, at::Tensor> got;
    stages::SegmentCallbacks cb;
    cb.trace = [&](const std::string& name, const at::Tensor& t) { got[name] = t.detach().to(torch::kCPU).clone(); };
    stages::generate_segment(model, r, cb);

    if (ctx.dtype() != torch::kFloat) {  // reduced precision: the end result, within the stated bound
      ctx.compare("frames", got.at("frames"), Tolerance::reduced_frames());
      return;
    }
    for (const auto& [name, ref] : ctx.outputs()) {
      auto it = got.find(name);
      if (it == got.end()) {
        ctx.fail(name, "not produced by the temporal stage");
        continue;
      }
      const bool schedule =
          name == "timesteps" || name == "sigmas" || name == "init_noise_sigma" || name.rfind("unet_timestep_", 0) == 0;
      ctx.compare(name, it->second, ref, schedule ? Tolerance::schedule() : Tolerance::pipeline());
    }
  };
}

}  // namespace clipgen::parity
