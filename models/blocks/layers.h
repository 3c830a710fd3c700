// Basic layers shared by every diffusion model: Conv2d and Linear with the torch parameter names
// ("weight", "bias"), plus activations by diffusers name.
//
// Why not torch::nn::Conv2d/Linear: these allocate their parameters without filling them when an
// EmptyInitGuard is active (building a 2.6 B-parameter SDXL UNet only to read its parameter names, or
// before loading a checkpoint), and they are the one place where inference speed-ups live (oneDNN weight
// pre-packing, channels-last), see `set_fast_inference`.
#pragma once
#include <cstdint>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace clipgen::blocks {

// While alive on this thread, newly constructed Conv2d/Linear parameters are left uninitialised
// (torch::empty: no page is touched until written). Use only when weights are loaded right after.
class EmptyInitGuard {
public:
  EmptyInitGuard();
  ~EmptyInitGuard();
  EmptyInitGuard(const EmptyInitGuard&) = delete;
  EmptyInitGuard& operator=(const EmptyInitGuard&) = delete;
  static bool active();

private:
  bool previous_;
};

struct Conv2dOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t kernel_size = 3, stride = 1, padding = 0;
  bool bias = true;
};

// nn.Conv2d (square kernel, zero padding, groups 1). Default init as torch: U(±1/sqrt(fan_in)).
class Conv2dImpl : public torch::nn::Module {
public:
  explicit Conv2dImpl(const Conv2dOptions& o);
  at::Tensor forward(const at::Tensor& x);
  const Conv2dOptions& options() const { return opt_; }
  // Fast inference: the weight is re-ordered once into oneDNN's blocked layout and convolutions run
  // through at::mkldnn_convolution (no per-call weight re-packing). Results are identical. The packed copy
  // is rebuilt when the weight changes (load, .to(dtype)). No effect without MKLDNN or off the CPU.
  void set_fast(bool on) { fast_ = on; packed_ = at::Tensor(); }

  at::Tensor weight, bias;  // bias undefined when options().bias is false

private:
  Conv2dOptions opt_;
  bool fast_ = false;
  at::Tensor packed_;
  const void* packed_ptr_ = nullptr;
  int64_t packed_version_ = -1;
};
TORCH_MODULE(Conv2d);

// nn.Linear. Default init U(±1/sqrt(in_features)).
class LinearImpl : public torch::nn::Module {
public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  at::Tensor forward(const at::Tensor& x);
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  at::Tensor weight, bias;

private:
  int64_t in_, out_;
};
TORCH_MODULE(Linear);

// Counts floating-point operations of Conv2d, Linear and attention matmuls (2 × multiply-accumulates;
// norms, activations, softmax and elementwise ops are not counted) while enabled. For benchmarks.
struct FlopCounter {
  static void enable(bool on);
  static bool enabled();
  static void reset();
  static void add(double flops);
  static double total();
};

// Enables/disables Conv2dImpl::set_fast on every Conv2d below `root`. Returns how many were switched.
int64_t set_fast_inference(torch::nn::Module& root, bool on);

// Applies a diffusers activation by name: "silu"/"swish", "gelu", "relu", "mish", "quick_gelu".
// Throws UnsupportedError naming `key` and the value for anything else.
at::Tensor activation(const std::string& name, const at::Tensor& x);
// Validates an activation name early (at construction), naming the config key on error.
void check_activation(const std::string& name, const std::string& key);

}  // namespace clipgen::blocks
