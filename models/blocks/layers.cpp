#include "models/blocks/layers.h"

#include <cmath>

#include <torch/torch.h>

#include "core/error.h"

namespace clipgen::blocks {

namespace {
thread_local bool g_empty_init = false;

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

EmptyInitGuard::EmptyInitGuard() : previous_(g_empty_init) { g_empty_init = true; }
EmptyInitGuard::~EmptyInitGuard() { g_empty_init = previous_; }
bool EmptyInitGuard::active() { return g_empty_init; }

Conv2dImpl::Conv2dImpl(const Conv2dOptions& o) : opt_(o) {
  const int64_t fan_in = o.in_channels * o.kernel_size * o.kernel_size;
  weight = register_parameter("weight", make_param({o.out_channels, o.in_channels, o.kernel_size, o.kernel_size}, fan_in));
  if (o.bias) bias = register_parameter("bias", make_param({o.out_channels}, fan_in));
}

at::Tensor Conv2dImpl::forward(const at::Tensor& x) {
  return at::conv2d(x, weight, bias, {opt_.stride, opt_.stride}, {opt_.padding, opt_.padding});
}

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool has_bias) : in_(in_features), out_(out_features) {
  weight = register_parameter("weight", make_param({out_features, in_features}, in_features));
  if (has_bias) bias = register_parameter("bias", make_param({out_features}, in_features));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) { return at::linear(x, weight, bias); }

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
