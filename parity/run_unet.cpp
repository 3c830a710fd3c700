// Fixture runner for UNet2DConditionModel (fixtures/unet2d/*): every `unet(sample, timestep_j,
// encoder_hidden_states[, text_embeds, time_ids])` call of fixture.json, and every stored intermediate
// (top-level submodule outputs during the timestep_0 call), at Tolerance::model().
#include <torch/torch.h>

#include "models/io/state_dict.h"
#include "models/unet_2d_condition.h"
#include "parity/fixture.h"

namespace clipgen::parity {

void register_unet_runners() {
  runners()["UNet2DConditionModel"] = [](FixtureContext& ctx) {
    torch::NoGradGuard ng;
    auto cfg = UNet2DConditionConfig::from_json(ctx.config(), (ctx.dir() / "config.json").string());
    UNet2DConditionModel unet{nullptr};
    {
      blocks::EmptyInitGuard g;
      unet = UNet2DConditionModel(cfg);
    }
    io::load_weights_into(*unet, ctx.weights_path());
    unet->eval();
    unet->to(ctx.device());
    const auto& in = ctx.inputs();
    auto opt = [&](const char* k) { return in.count(k) ? ctx.to_device(in.at(k)) : at::Tensor(); };
    const auto sample = ctx.device_input("sample"), ehs = ctx.device_input("encoder_hidden_states");
    const auto text_embeds = opt("text_embeds"), time_ids = opt("time_ids");
    for (int j = 0;; ++j) {
      const std::string tname = "timestep_" + std::to_string(j);
      if (!in.count(tname)) break;
      UNetTrace trace;
      if (j == 0)
        trace = [&](const std::string& name, const at::Tensor& v) { ctx.compare_intermediate(name, v); };
      auto out = unet(sample, ctx.to_device(in.at(tname)), ehs, text_embeds, time_ids, trace);
      ctx.compare("sample_" + std::to_string(j), out, Tolerance::model());
    }
  };
}

}  // namespace clipgen::parity
