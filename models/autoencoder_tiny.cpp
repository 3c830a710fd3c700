#include "models/autoencoder_tiny.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/diffusers_folder.h"
#include "models/io/load_component.h"
#include "models/io/state_dict.h"

namespace clipgen {

AutoencoderTinyConfig AutoencoderTinyConfig::from_json(const nlohmann::json& j, const std::string& source) {
  AutoencoderTinyConfig c;
  auto vec = [&](const char* k, std::vector<int64_t>& dst) {
    if (j.contains(k) && !j[k].is_null()) dst = j[k].get<std::vector<int64_t>>();
  };
  auto num = [&](const char* k, auto& dst) {
    if (j.contains(k) && !j[k].is_null()) dst = j[k].get<std::decay_t<decltype(dst)>>();
  };
  num("in_channels", c.in_channels);
  num("out_channels", c.out_channels);
  num("latent_channels", c.latent_channels);
  vec("encoder_block_out_channels", c.encoder_block_out_channels);
  vec("decoder_block_out_channels", c.decoder_block_out_channels);
  vec("num_encoder_blocks", c.num_encoder_blocks);
  vec("num_decoder_blocks", c.num_decoder_blocks);
  num("act_fn", c.act_fn);
  num("latent_magnitude", c.latent_magnitude);
  num("latent_shift", c.latent_shift);
  num("scaling_factor", c.scaling_factor);
  num("upsampling_scaling_factor", c.upsampling_scaling_factor);
  num("force_upcast", c.force_upcast);
  if (c.encoder_block_out_channels.size() != c.num_encoder_blocks.size())
    throw UnsupportedError(source + ": encoder_block_out_channels and num_encoder_blocks differ in length");
  if (c.decoder_block_out_channels.size() != c.num_decoder_blocks.size())
    throw UnsupportedError(source + ": decoder_block_out_channels and num_decoder_blocks differ in length");
  try {
    blocks::check_activation(c.act_fn, "act_fn");
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(source + ": " + e.what());
  }
  return c;
}

AutoencoderTinyBlockImpl::AutoencoderTinyBlockImpl(int64_t in, int64_t out, std::string act_fn) : act_(std::move(act_fn)) {
  conv = register_module("conv", torch::nn::ModuleList());
  for (int k = 0; k < 3; ++k) {
    convs_.push_back(blocks::Conv2d(blocks::Conv2dOptions{k == 0 ? in : out, out, 3, 1, 1}));
    conv->push_back(convs_.back());
    if (k < 2) conv->push_back(torch::nn::Identity());  // conv.1 / conv.3: the activation (no parameters)
  }
  if (in != out) skip = register_module("skip", blocks::Conv2d(blocks::Conv2dOptions{in, out, 1, 1, 0, false}));
}

at::Tensor AutoencoderTinyBlockImpl::forward(const at::Tensor& x) {
  auto h = blocks::activation(act_, convs_[0](x));
  h = blocks::activation(act_, convs_[1](h));
  h = convs_[2](h);
  return at::relu(h + (skip ? skip(x) : x));
}

void TinyLayerStackImpl::add(Layer l, std::shared_ptr<torch::nn::Module> m) {
  if (!layers) layers = register_module("layers", torch::nn::ModuleList());
  layers->push_back(m ? m : std::make_shared<torch::nn::IdentityImpl>());
  list_.push_back(std::move(l));
}

at::Tensor TinyLayerStackImpl::run(const at::Tensor& x) {
  at::Tensor h = x;
  for (auto& l : list_) {
    switch (l.kind) {
      case Layer::Conv: h = l.conv(h); break;
      case Layer::Block: h = l.block(h); break;
      case Layer::Act: h = blocks::activation(act_, h); break;
      case Layer::Upsample:
        h = at::upsample_nearest2d(h, {h.size(2) * upsample_, h.size(3) * upsample_}, double(upsample_), double(upsample_));
        break;
    }
  }
  return h;
}

EncoderTinyImpl::EncoderTinyImpl(const AutoencoderTinyConfig& c) {
  act_ = c.act_fn;
  const auto& ch = c.encoder_block_out_channels;
  for (size_t i = 0; i < ch.size(); ++i) {
    Layer conv{Layer::Conv};
    conv.conv = i == 0 ? blocks::Conv2d(blocks::Conv2dOptions{c.in_channels, ch[i], 3, 1, 1})
                       : blocks::Conv2d(blocks::Conv2dOptions{ch[i], ch[i], 3, 2, 1, false});
    add(conv, conv.conv.ptr());
    for (int64_t b = 0; b < c.num_encoder_blocks[i]; ++b) {
      Layer blk{Layer::Block};
      blk.block = AutoencoderTinyBlock(ch[i], ch[i], c.act_fn);
      add(blk, blk.block.ptr());
    }
  }
  Layer out{Layer::Conv};
  out.conv = blocks::Conv2d(blocks::Conv2dOptions{ch.back(), c.latent_channels, 3, 1, 1});
  add(out, out.conv.ptr());
}

at::Tensor EncoderTinyImpl::forward(const at::Tensor& x) { return run(x.add(1).div(2)); }

DecoderTinyImpl::DecoderTinyImpl(const AutoencoderTinyConfig& c) {
  act_ = c.act_fn;
  upsample_ = c.upsampling_scaling_factor;
  const auto& ch = c.decoder_block_out_channels;
  Layer in{Layer::Conv};
  in.conv = blocks::Conv2d(blocks::Conv2dOptions{c.latent_channels, ch[0], 3, 1, 1});
  add(in, in.conv.ptr());
  add(Layer{Layer::Act}, nullptr);
  for (size_t i = 0; i < ch.size(); ++i) {
    const bool last = i + 1 == ch.size();
    for (int64_t b = 0; b < c.num_decoder_blocks[i]; ++b) {
      Layer blk{Layer::Block};
      blk.block = AutoencoderTinyBlock(ch[i], ch[i], c.act_fn);
      add(blk, blk.block.ptr());
    }
    if (!last) add(Layer{Layer::Upsample}, nullptr);
    Layer conv{Layer::Conv};
    conv.conv = blocks::Conv2d(blocks::Conv2dOptions{ch[i], last ? c.out_channels : ch[i], 3, 1, 1, last});
    add(conv, conv.conv.ptr());
  }
}

at::Tensor DecoderTinyImpl::forward(const at::Tensor& z) {
  auto h = at::tanh(z / 3) * 3;
  return run(h).mul(2).sub(1);
}

AutoencoderTinyImpl::AutoencoderTinyImpl(const AutoencoderTinyConfig& c) : cfg_(c) {
  encoder = register_module("encoder", EncoderTiny(c));
  decoder = register_module("decoder", DecoderTiny(c));
}

at::Tensor AutoencoderTinyImpl::encode(const at::Tensor& image) { return encoder(image); }
at::Tensor AutoencoderTinyImpl::decode(const at::Tensor& latents) { return decoder(latents); }

at::Tensor AutoencoderTinyImpl::scale_latents(const at::Tensor& x) const {
  return x.div(2 * cfg_.latent_magnitude).add(cfg_.latent_shift).clamp(0, 1);
}

at::Tensor AutoencoderTinyImpl::unscale_latents(const at::Tensor& x) const {
  return x.sub(cfg_.latent_shift).mul(2 * cfg_.latent_magnitude);
}

at::Tensor AutoencoderTinyImpl::forward(const at::Tensor& image) {
  auto q = scale_latents(encode(image)).mul_(255).round_().to(torch::kByte);  // uint8 quantisation
  return decode(unscale_latents(q.to(torch::kFloat) / 255.0));
}

AutoencoderTiny load_autoencoder_tiny(const std::filesystem::path& folder) {
  return io::load_component<AutoencoderTiny, AutoencoderTinyConfig>(folder);
}

}  // namespace clipgen
