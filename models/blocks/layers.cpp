#include "models/blocks/layers.h"

#include <atomic>
#include <cmath>

#include <ATen/Context.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::blocks {

namespace {
thread_local bool g_empty_init = false;
std::atomic<bool> g_count{false};
std::atomic<double> g_flops{0};

at::Tensor make_param(at::IntArrayRef shape, int64_t fan_in) {
  torch::NoGradGuard ng;
  auto t = torch::empty(shape);
  if (!g_empty_init) {
    const double b = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(1, fan_in)));
    t.uniform_(-b, b);
  }
  return t;
}
}  // namespace

void FlopCounter::enable(bool on) { g_count = on; }
bool FlopCounter::enabled() { return g_count; }
void FlopCounter::reset() { g_flops = 0; }
void FlopCounter::add(double f) {
  if (!g_count) return;
  double cur = g_flops.load();
  while (!g_flops.compare_exchange_weak(cur, cur + f)) {
  }
}
double FlopCounter::total() { return g_flops; }

EmptyInitGuard::EmptyInitGuard() : previous_(g_empty_init) { g_empty_init = true; }
EmptyInitGuard::~EmptyInitGuard() { g_empty_init = previous_; }
bool EmptyInitGuard::active() { return g_empty_init; }

Conv2dImpl::Conv2dImpl(const Conv2dOptions& o) : opt_(o) {
  const int64_t fan_in = o.in_channels * o.kernel_size * o.kernel_size;
  weight = register_parameter("weight", make_param({o.out_channels, o.in_channels, o.kernel_size, o.kernel_size}, fan_in));
  if (o.bias) bias = register_parameter("bias", make_param({o.out_channels}, fan_in));
}

at::Tensor Conv2dImpl::forward(const at::Tensor& x) {
  if (fast_ && x.device().is_cpu() && at::hasMKLDNN() && x.dim() == 4 &&
      (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) && x.scalar_type() == weight.scalar_type() &&
      !at::GradMode::is_enabled()) {
    try {
      if (!packed_.defined() || packed_ptr_ != weight.data_ptr() ||
          packed_version_ != static_cast<int64_t>(weight._version())) {
        packed_ = at::mkldnn_reorder_conv2d_weight(weight.to_mkldnn(), {opt_.padding, opt_.padding},
                                                   {opt_.stride, opt_.stride}, {1, 1}, 1);
        packed_ptr_ = weight.data_ptr();
        packed_version_ = static_cast<int64_t>(weight._version());
      }
      auto y = at::mkldnn_convolution(x.contiguous(), packed_, bias, {opt_.padding, opt_.padding},
                                      {opt_.stride, opt_.stride}, {1, 1}, 1);
      if (g_count) FlopCounter::add(2.0 * y.numel() * opt_.in_channels * opt_.kernel_size * opt_.kernel_size);
      return y;
    } catch (const c10::Error& e) {
      // A LibTorch whose oneDNN entry points refuse a pre-packed weight (they are not public API and
      // only 1.13 is tested on CPU): this layer falls back to at::conv2d, which gives the same numbers.
      static std::atomic<bool> warned{false};
      if (!warned.exchange(true))
        spdlog::warn("pre-packed convolution unavailable ({}); using at::conv2d", e.what_without_backtrace());
      set_fast(false);
    }
  }
  auto y = at::conv2d(x, weight, bias, {opt_.stride, opt_.stride}, {opt_.padding, opt_.padding});
  if (g_count) FlopCounter::add(2.0 * y.numel() * opt_.in_channels * opt_.kernel_size * opt_.kernel_size);
  return y;
}

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool has_bias) : in_(in_features), out_(out_features) {
  weight = register_parameter("weight", make_param({out_features, in_features}, in_features));
  if (has_bias) bias = register_parameter("bias", make_param({out_features}, in_features));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  if (g_count) FlopCounter::add(2.0 * (x.numel() / in_) * in_ * out_);
  return at::linear(x, weight, bias);
}

int64_t set_fast_inference(torch::nn::Module& root, bool on) {
  int64_t n = 0;
  for (const auto& m : root.modules(/*include_self=*/true)) {
    if (auto* c = dynamic_cast<Conv2dImpl*>(m.get())) {
      c->set_fast(on);
      ++n;
    }
  }
  return n;
}

void check_activation(const std::string& name, const std::string& key) {
  if (name == "silu" || name == "swish" || name == "gelu" || name == "relu" || name == "mish" || name == "quick_gelu")
    return;
  throw UnsupportedError("unsupported activation " + key + "=\"" + name + "\" (supported: silu, swish, gelu, relu, mish)");
}

at::Tensor activation(const std::string& name, const at::Tensor& x) {
  if (name == "silu" || name == "swish") return at::silu(x);
  if (name == "gelu") return at::gelu(x);
  if (name == "relu") return at::relu(x);
  if (name == "mish") return at::mish(x);
  if (name == "quick_gelu") return x * at::sigmoid(1.702 * x);
  throw UnsupportedError("unsupported activation \"" + name + "\"");
}

}  // namespace clipgen::blocks
