// The transformer encoder shared by CLIP's text and vision towers (transformers' CLIPAttention, CLIPMLP,
// CLIPEncoderLayer, CLIPEncoder), registered under transformers' parameter names:
//   layers.<i>.self_attn.{k_proj,v_proj,q_proj,out_proj}.{weight,bias}, layers.<i>.layer_norm1.*,
//   layers.<i>.mlp.{fc1,fc2}.*, layers.<i>.layer_norm2.*
// Pre-LayerNorm residual blocks: x += attn(ln1(x)); x += mlp(ln2(x)).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "models/blocks/layers.h"

namespace clipgen {

// transformers ACT2FN names used by CLIP configs.
enum class CLIPActivation { QuickGELU, GELU, GELUTanh, ReLU, SiLU };
// Parses `hidden_act`; throws UnsupportedError naming `key` for anything else.
CLIPActivation parse_clip_activation(const std::string& name, const std::string& key = "hidden_act");
std::string to_string(CLIPActivation a);
at::Tensor apply_activation(CLIPActivation a, const at::Tensor& x);

struct CLIPEncoderConfig {
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  CLIPActivation hidden_act = CLIPActivation::QuickGELU;
  double layer_norm_eps = 1e-5;
  // Throws UnsupportedError if hidden_size is not divisible by the head count, or a size is not positive.
  void validate(const std::string& source) const;
};

// Multi-head self-attention. q is scaled by head_dim^-0.5 (folded into the attention op's scale).
class CLIPAttentionImpl : public torch::nn::Module {
public:
  explicit CLIPAttentionImpl(const CLIPEncoderConfig& c);
  // x [B, L, C]; `mask` additive, broadcastable to [B, 1, L, L]; `causal` adds the causal mask.
  at::Tensor forward(const at::Tensor& x, const std::optional<at::Tensor>& mask, bool causal);

  blocks::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};

private:
  int64_t heads_;
};
TORCH_MODULE(CLIPAttention);

class CLIPMLPImpl : public torch::nn::Module {
public:
  explicit CLIPMLPImpl(const CLIPEncoderConfig& c);
  at::Tensor forward(const at::Tensor& x);

  blocks::Linear fc1{nullptr}, fc2{nullptr};

private:
  CLIPActivation act_;
};
TORCH_MODULE(CLIPMLP);

class CLIPEncoderLayerImpl : public torch::nn::Module {
public:
  explicit CLIPEncoderLayerImpl(const CLIPEncoderConfig& c);
  at::Tensor forward(const at::Tensor& x, const std::optional<at::Tensor>& mask, bool causal);

  CLIPAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr};
  CLIPMLP mlp{nullptr};
  torch::nn::LayerNorm layer_norm2{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

class CLIPEncoderImpl : public torch::nn::Module {
public:
  explicit CLIPEncoderImpl(const CLIPEncoderConfig& c);
  // Runs all layers. When `hidden_states` is given it receives L+1 tensors: the input, then the output
  // of each layer (transformers' `hidden_states` with output_hidden_states=True).
  at::Tensor forward(const at::Tensor& x, const std::optional<at::Tensor>& mask, bool causal,
                     std::vector<at::Tensor>* hidden_states = nullptr);

  torch::nn::ModuleList layers{nullptr};

private:
  std::vector<CLIPEncoderLayer> layer_ptrs_;
};
TORCH_MODULE(CLIPEncoder);

// Expands a [B, L] 0/1 padding mask to an additive [B, 1, 1, L] mask (0 keep, large negative drop).
at::Tensor expand_padding_mask(const at::Tensor& attention_mask, c10::ScalarType dtype);

// Reads an integer/number/string config key with a default; errors name `source` and the key.
int64_t config_int(const nlohmann::json& cfg, const char* key, int64_t def, const std::string& source);
double config_double(const nlohmann::json& cfg, const char* key, double def, const std::string& source);
std::string config_string(const nlohmann::json& cfg, const char* key, const std::string& def, const std::string& source);

}  // namespace clipgen
