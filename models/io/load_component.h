// One diffusers component folder (config.json + weights) into its model class: the model is built from
// its config with parameters left unfilled (blocks::EmptyInitGuard: no page is touched twice), every
// parameter is then read from the folder's weights (state_dict.h: names and shapes checked), and the model
// is put in eval mode. Each model's load_<class>(folder) is this with its own types.
#pragma once
#include <filesystem>

#include "models/blocks/layers.h"
#include "models/io/diffusers_folder.h"
#include "models/io/state_dict.h"

namespace clipgen::io {

template <class Model, class Config>
Model load_component(const std::filesystem::path& folder) {
  const auto cfg_path = folder / "config.json";
  auto cfg = Config::from_json(read_json(cfg_path), cfg_path.string());
  Model m{nullptr};
  {
    blocks::EmptyInitGuard g;
    m = Model(cfg);
  }
  load_weights_into(*m, folder);
  m->eval();
  return m;
}

}  // namespace clipgen::io
