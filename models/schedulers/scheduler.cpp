#include "models/schedulers/scheduler.h"

#include <cmath>
#include <functional>
#include <limits>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "core/fs.h"
#include "models/rng.h"

namespace clipgen::schedulers {

// ---------------------------------------------------------------------------------------------------
// Config: one table of (key, member) drives parsing, serialising and the per-class key lists.

namespace {

using json = nlohmann::json;

[[noreturn]] void bad_value(const std::string& source, const std::string& key, const std::string& expected, const json& v) {
  throw ConfigError(source.empty() ? "<scheduler config>" : source, 0, 0,
                    fmt::format("key '{}': expected {}, got {}", key, expected, v.dump()));
}

// Python's json writes ±Infinity / NaN as bare tokens; from_file() quotes them, so numbers may arrive as strings.
bool special_number(const json& v, double& out) {
  if (!v.is_string()) return false;
  auto s = v.get<std::string>();
  if (s == "Infinity") out = std::numeric_limits<double>::infinity();
  else if (s == "-Infinity") out = -std::numeric_limits<double>::infinity();
  else if (s == "NaN") out = std::numeric_limits<double>::quiet_NaN();
  else return false;
  return true;
}

double parse_double(const json& v, const std::string& source, const std::string& key) {
  double d = 0;
  if (v.is_number()) return v.get<double>();
  if (special_number(v, d)) return d;
  bad_value(source, key, "a number", v);
}

int parse_int(const json& v, const std::string& source, const std::string& key) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    auto x = v.get<int64_t>();
    if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max()) bad_value(source, key, "an integer in int range", v);
    return static_cast<int>(x);
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::abs(d) < 2e9) return static_cast<int>(d);
  }
  bad_value(source, key, "an integer", v);
}

struct Field {
  const char* key;
  std::function<void(SchedulerConfig&, const json&, const std::string& source)> set;
  std::function<json(const SchedulerConfig&)> get;
};

template <class T>
Field field(const char* key, T SchedulerConfig::*m) {
  Field f;
  f.key = key;
  f.set = [key, m](SchedulerConfig& c, const json& v, const std::string& src) {
    std::string k = key;
    if constexpr (std::is_same_v<T, int>) {
      c.*m = parse_int(v, src, k);
    } else if constexpr (std::is_same_v<T, double>) {
      c.*m = parse_double(v, src, k);
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) bad_value(src, k, "true or false", v);
      c.*m = v.get<bool>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) bad_value(src, k, "a string", v);
      c.*m = v.get<std::string>();
    } else if constexpr (std::is_same_v<T, std::optional<double>>) {
      if (v.is_null()) c.*m = std::nullopt;
      else c.*m = parse_double(v, src, k);
    } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
      if (v.is_null()) c.*m = std::nullopt;
      else if (v.is_string()) c.*m = v.get<std::string>();
      else bad_value(src, k, "a string or null", v);
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      std::vector<double> out;
      if (!v.is_null()) {
        if (!v.is_array()) bad_value(src, k, "a list of numbers or null", v);
        for (const auto& e : v) out.push_back(parse_double(e, src, k));
      }
      c.*m = std::move(out);
    }
  };
  f.get = [m](const SchedulerConfig& c) -> json {
    if constexpr (std::is_same_v<T, std::optional<double>> || std::is_same_v<T, std::optional<std::string>>) {
      return (c.*m) ? json(*(c.*m)) : json(nullptr);
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      return (c.*m).empty() ? json(nullptr) : json(c.*m);
    } else if constexpr (std::is_same_v<T, double>) {
      double d = c.*m;
      if (std::isinf(d)) return json(d > 0 ? "Infinity" : "-Infinity");
      return json(d);
    } else {
      return json(c.*m);
    }
  };
  return f;
}

const std::vector<Field>& fields() {
  using C = SchedulerConfig;
  static const std::vector<Field> table = {
      field("num_train_timesteps", &C::num_train_timesteps),
      field("beta_start", &C::beta_start),
      field("beta_end", &C::beta_end),
      field("beta_schedule", &C::beta_schedule),
      field("trained_betas", &C::trained_betas),
      field("rescale_betas_zero_snr", &C::rescale_betas_zero_snr),
      field("prediction_type", &C::prediction_type),
      field("timestep_spacing", &C::timestep_spacing),
      field("steps_offset", &C::steps_offset),
      field("clip_sample", &C::clip_sample),
      field("clip_sample_range", &C::clip_sample_range),
      field("set_alpha_to_one", &C::set_alpha_to_one),
      field("thresholding", &C::thresholding),
      field("dynamic_thresholding_ratio", &C::dynamic_thresholding_ratio),
      field("sample_max_value", &C::sample_max_value),
      field("skip_prk_steps", &C::skip_prk_steps),
      field("use_karras_sigmas", &C::use_karras_sigmas),
      field("sigma_min", &C::sigma_min),
      field("sigma_max", &C::sigma_max),
      field("timestep_type", &C::timestep_type),
      field("interpolation_type", &C::interpolation_type),
      field("algorithm_type", &C::algorithm_type),
      field("solver_order", &C::solver_order),
      field("solver_type", &C::solver_type),
      field("lower_order_final", &C::lower_order_final),
      field("euler_at_final", &C::euler_at_final),
      field("use_lu_lambdas", &C::use_lu_lambdas),
      field("final_sigmas_type", &C::final_sigmas_type),
      field("lambda_min_clipped", &C::lambda_min_clipped),
      field("variance_type", &C::variance_type),
      field("original_inference_steps", &C::original_inference_steps),
      field("timestep_scaling", &C::timestep_scaling),
  };
  return table;
}

const Field* find_field(const std::string& key) {
  for (const auto& f : fields())
    if (key == f.key) return &f;
  return nullptr;
}

// The constructor arguments of each diffusers 0.27.2 class.
const std::map<std::string, std::set<std::string>>& class_keys() {
  static const std::set<std::string> common = {"num_train_timesteps", "beta_start", "beta_end", "beta_schedule",
                                               "trained_betas", "prediction_type", "timestep_spacing", "steps_offset"};
  auto with = [&](std::initializer_list<const char*> extra) {
    auto s = common;
    for (auto e : extra) s.insert(e);
    return s;
  };
  static const std::map<std::string, std::set<std::string>> m = {
      {"DDIMScheduler", with({"clip_sample", "set_alpha_to_one", "thresholding", "dynamic_thresholding_ratio",
                              "clip_sample_range", "sample_max_value", "rescale_betas_zero_snr"})},
      {"PNDMScheduler", with({"skip_prk_steps", "set_alpha_to_one"})},
      {"EulerDiscreteScheduler", with({"interpolation_type", "use_karras_sigmas", "sigma_min", "sigma_max",
                                       "timestep_type", "rescale_betas_zero_snr"})},
      {"EulerAncestralDiscreteScheduler", with({"rescale_betas_zero_snr"})},
      {"DPMSolverMultistepScheduler",
       with({"solver_order", "thresholding", "dynamic_thresholding_ratio", "sample_max_value", "algorithm_type",
             "solver_type", "lower_order_final", "euler_at_final", "use_karras_sigmas", "use_lu_lambdas",
             "final_sigmas_type", "lambda_min_clipped", "variance_type", "rescale_betas_zero_snr"})},
      {"LCMScheduler", with({"original_inference_steps", "clip_sample", "clip_sample_range", "set_alpha_to_one",
                             "thresholding", "dynamic_thresholding_ratio", "sample_max_value", "timestep_scaling",
                             "rescale_betas_zero_snr"})},
  };
  return m;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Quotes bare Infinity / -Infinity / NaN tokens (outside strings) so nlohmann::json can parse Python's output.
std::string quote_python_specials(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  bool in_str = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_str) {
      out += c;
      if (c == '\\' && i + 1 < text.size()) out += text[++i];
      else if (c == '"') in_str = false;
      continue;
    }
    if (c == '"') {
      in_str = true;
      out += c;
      continue;
    }
    bool matched = false;
    for (const char* tok : {"-Infinity", "Infinity", "NaN"}) {
      size_t n = std::strlen(tok);
      if (text.compare(i, n, tok) == 0) {
        out += '"';
        out += tok;
        out += '"';
        i += n - 1;
        matched = true;
        break;
      }
    }
    if (!matched) out += c;
  }
  return out;
}

}  // namespace

const std::vector<std::string>& supported_classes() {
  static const std::vector<std::string> v = {"DDIMScheduler",
                                             "PNDMScheduler",
                                             "EulerDiscreteScheduler",
                                             "EulerAncestralDiscreteScheduler",
                                             "DPMSolverMultistepScheduler",
                                             "LCMScheduler"};
  return v;
}

SchedulerConfig SchedulerConfig::defaults(const std::string& class_name) {
  SchedulerConfig c;
  c.class_name = class_name;
  if (class_name == "DDIMScheduler") {
    // the struct defaults are DDIM's
  } else if (class_name == "PNDMScheduler") {
    c.set_alpha_to_one = false;
  } else if (class_name == "EulerDiscreteScheduler" || class_name == "EulerAncestralDiscreteScheduler") {
    c.timestep_spacing = "linspace";
  } else if (class_name == "DPMSolverMultistepScheduler") {
    c.timestep_spacing = "linspace";
  } else if (class_name == "LCMScheduler") {
    c.beta_start = 0.00085;
    c.beta_end = 0.012;
    c.beta_schedule = "scaled_linear";
    c.clip_sample = false;
    c.set_alpha_to_one = true;
  } else {
    throw UnsupportedError(fmt::format("scheduler class '{}' is not supported (supported: {})", class_name,
                                       join(supported_classes())));
  }
  return c;
}

SchedulerConfig SchedulerConfig::from_json(const nlohmann::json& j, const std::string& source_file) {
  const std::string src = source_file.empty() ? "<scheduler config>" : source_file;
  if (!j.is_object()) throw ConfigError(src, 0, 0, "a scheduler config must be a JSON object");
  std::string cls;
  if (j.contains("_class_name")) {
    if (!j["_class_name"].is_string()) bad_value(src, "_class_name", "a string", j["_class_name"]);
    cls = j["_class_name"].get<std::string>();
  } else {
    throw ConfigError(src, 0, 0, "key '_class_name' is missing (the diffusers scheduler class)");
  }
  SchedulerConfig c;
  try {
    c = defaults(cls);
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(src + ": key '_class_name': " + e.what());
  }
  c.source = source_file;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (const Field* f = find_field(it.key())) f->set(c, it.value(), src);
  }
  return c;
}

SchedulerConfig SchedulerConfig::from_file(const std::filesystem::path& path) {
  std::string text = read_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(quote_python_specials(text));
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(path.string(), 0, 0, std::string("invalid JSON: ") + e.what());
  }
  return from_json(j, path.string());
}

nlohmann::json SchedulerConfig::to_json() const {
  json j = json::object();
  j["_class_name"] = class_name;
  auto it = class_keys().find(class_name);
  for (const auto& f : fields())
    if (it == class_keys().end() || it->second.count(f.key)) j[f.key] = f.get(*this);
  return j;
}

SchedulerConfig SchedulerConfig::for_class(const std::string& new_class) const {
  if (new_class == class_name) return *this;
  SchedulerConfig c = defaults(new_class);
  c.source = source;
  const auto& keys = class_keys().at(new_class);
  const auto& mine = class_keys().count(class_name) ? class_keys().at(class_name) : keys;
  for (const auto& f : fields())
    if (keys.count(f.key) && mine.count(f.key)) f.set(c, f.get(*this), source);
  return c;
}

// ---------------------------------------------------------------------------------------------------
// Shared numerics.

namespace detail {

at::Tensor make_betas(const SchedulerConfig& cfg) {
  const int n = cfg.num_train_timesteps;
  if (n < 2) throw UnsupportedError(fmt::format("{}: key 'num_train_timesteps': must be at least 2 (got {})", cfg.source, n));
  at::Tensor betas;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  if (!cfg.trained_betas.empty()) {
    betas = torch::tensor(cfg.trained_betas, torch::TensorOptions().dtype(torch::kDouble)).to(torch::kFloat);
    if (betas.numel() != n)
      throw UnsupportedError(fmt::format("{}: key 'trained_betas': has {} values, num_train_timesteps is {}", cfg.source,
                                         betas.numel(), n));
  } else if (cfg.beta_schedule == "linear") {
    betas = torch::linspace(cfg.beta_start, cfg.beta_end, n, f32);
  } else if (cfg.beta_schedule == "scaled_linear") {
    betas = torch::linspace(std::sqrt(cfg.beta_start), std::sqrt(cfg.beta_end), n, f32).pow(2);
  } else if (cfg.beta_schedule == "squaredcos_cap_v2") {
    // Nichol & Dhariwal's cosine ᾱ(t), betas capped at 0.999, computed in float64.
    auto alpha_bar = [](double t) {
      double c = std::cos((t + 0.008) / 1.008 * M_PI / 2);
      return c * c;
    };
    std::vector<double> b(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      double t1 = static_cast<double>(i) / n, t2 = static_cast<double>(i + 1) / n;
      b[static_cast<size_t>(i)] = std::min(1 - alpha_bar(t2) / alpha_bar(t1), 0.999);
    }
    betas = torch::tensor(b, torch::TensorOptions().dtype(torch::kDouble)).to(torch::kFloat);
  } else {
    throw UnsupportedError(fmt::format("{}: key 'beta_schedule': '{}' is not supported (linear, scaled_linear, squaredcos_cap_v2)",
                                       cfg.source, cfg.beta_schedule));
  }
  if (cfg.rescale_betas_zero_snr) {
    // Lin et al. 2023, algorithm 1: shift/scale sqrt(ᾱ) so the last step has zero SNR.
    auto alphas = 1.0 - betas;
    auto ab_sqrt = torch::cumprod(alphas, 0).sqrt();
    auto a0 = ab_sqrt[0].clone(), aT = ab_sqrt[-1].clone();
    ab_sqrt = (ab_sqrt - aT) * (a0 / (a0 - aT));
    auto ab = ab_sqrt.pow(2);
    auto a = torch::cat({ab.slice(0, 0, 1), ab.slice(0, 1) / ab.slice(0, 0, -1)});
    betas = 1 - a;
  }
  return betas;
}

double np_round(double x) { return std::nearbyint(x); }

std::vector<double> np_linspace(double start, double stop, int num, bool endpoint) {
  std::vector<double> y(static_cast<size_t>(std::max(num, 0)));
  if (num <= 0) return y;
  int div = endpoint ? num - 1 : num;
  double delta = stop - start;
  if (div > 0) {
    double step = delta / div;
    for (int i = 0; i < num; ++i) y[static_cast<size_t>(i)] = (step == 0 ? i / static_cast<double>(div) * delta : i * step) + start;
  } else {
    for (int i = 0; i < num; ++i) y[static_cast<size_t>(i)] = i * delta + start;
  }
  if (endpoint && num > 1) y.back() = stop;
  return y;
}

std::vector<double> np_arange(double start, double stop, double step) {
  double len = std::ceil((stop - start) / step);
  std::vector<double> out;
  if (!(len > 0)) return out;
  out.reserve(static_cast<size_t>(len));
  for (int64_t i = 0; i < static_cast<int64_t>(len); ++i) out.push_back(start + static_cast<double>(i) * step);
  return out;
}

double np_interp_index(double x, const std::vector<float>& fp) {
  const auto n = static_cast<int64_t>(fp.size());
  if (x <= 0) return fp.front();
  if (x >= static_cast<double>(n - 1)) return fp.back();
  auto j = static_cast<int64_t>(std::floor(x));
  if (static_cast<double>(j) == x) return fp[static_cast<size_t>(j)];
  double y0 = fp[static_cast<size_t>(j)], y1 = fp[static_cast<size_t>(j + 1)];
  double slope = (y1 - y0) / 1.0;
  return slope * (x - static_cast<double>(j)) + y0;
}

std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int n) {
  const double rho = 7.0;
  auto ramp = np_linspace(0, 1, n);
  double min_inv = std::pow(sigma_min, 1 / rho), max_inv = std::pow(sigma_max, 1 / rho);
  std::vector<double> out(ramp.size());
  for (size_t i = 0; i < ramp.size(); ++i) out[i] = std::pow(max_inv + ramp[i] * (min_inv - max_inv), rho);
  return out;
}

double sigma_to_t(double sigma, const std::vector<float>& log_sigmas) {
  const auto n = static_cast<int64_t>(log_sigmas.size());
  double log_sigma = std::log(std::max(sigma, 1e-10));
  // low = argmax(cumsum(log_sigma - log_sigmas >= 0)): the last table entry ≤ log_sigma (0 if none).
  int64_t count = 0, best = 0, low = 0;
  for (int64_t j = 0; j < n; ++j) {
    if (log_sigma - static_cast<double>(log_sigmas[static_cast<size_t>(j)]) >= 0) ++count;
    if (count > best) {
      best = count;
      low = j;
    }
  }
  low = std::min(low, n - 2);
  int64_t high = low + 1;
  float lo = log_sigmas[static_cast<size_t>(low)], hi = log_sigmas[static_cast<size_t>(high)];
  float denom = lo - hi;  // numpy float32 scalar arithmetic
  double w = (static_cast<double>(lo) - log_sigma) / static_cast<double>(denom);
  w = std::clamp(w, 0.0, 1.0);
  return (1 - w) * static_cast<double>(low) + w * static_cast<double>(high);
}

std::vector<float> sigma_table(const at::Tensor& alphas_cumprod) {
  auto s = ((1 - alphas_cumprod) / alphas_cumprod).pow(0.5).contiguous();
  return std::vector<float>(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
}

at::Tensor threshold_sample(const at::Tensor& x, double ratio, double max_value) {
  auto dtype = x.scalar_type();
  auto s = x;
  if (dtype != torch::kFloat && dtype != torch::kDouble) s = s.to(torch::kFloat);
  auto shape = s.sizes().vec();
  auto flat = s.reshape({shape[0], -1});  // [B, C·H·W]
  auto q = torch::quantile(flat.abs(), ratio, 1);
  q = torch::clamp(q, 1.0, max_value).unsqueeze(1);
  flat = torch::clamp(flat, -q, q) / q;
  return flat.reshape(shape).to(dtype);
}

at::Tensor add_noise_alphas(const at::Tensor& alphas_cumprod, const at::Tensor& original, const at::Tensor& noise,
                            const at::Tensor& timesteps) {
  auto ac = alphas_cumprod.to(original.device(), original.scalar_type());
  auto idx = timesteps.to(original.device(), torch::kLong).flatten();
  auto a = ac.index_select(0, idx);
  auto sqrt_a = a.pow(0.5), sqrt_1ma = (1 - a).pow(0.5);
  std::vector<int64_t> bshape(static_cast<size_t>(original.dim()), 1);
  bshape[0] = -1;
  return sqrt_a.reshape(bshape) * original + sqrt_1ma.reshape(bshape) * noise;
}

at::Tensor draw_noise(const at::Tensor& like, at::Generator* gen, const at::Tensor* noise, const std::string& who) {
  if (noise) {
    if (noise->sizes() != like.sizes())
      throw Error(fmt::format("{}: injected noise has shape [{}], the model output [{}]", who, fmt::join(noise->sizes(), ","),
                              fmt::join(like.sizes(), ",")));
    return noise->to(like.device(), like.scalar_type());
  }
  if (gen) return clipgen::randn(like.sizes(), *gen, like.device(), like.scalar_type());
  throw Error(who + ": this step draws noise: pass a generator or a noise tensor");
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------
// Scheduler base.

Scheduler::Scheduler(SchedulerConfig cfg, const char* class_name) : cfg_(std::move(cfg)) {
  cfg_.class_name = class_name;
  if (cfg_.prediction_type != "epsilon" && cfg_.prediction_type != "v_prediction" && cfg_.prediction_type != "sample")
    unsupported("prediction_type", cfg_.prediction_type, "epsilon, v_prediction, sample");
  if (cfg_.timestep_spacing != "leading" && cfg_.timestep_spacing != "linspace" && cfg_.timestep_spacing != "trailing")
    unsupported("timestep_spacing", cfg_.timestep_spacing, "leading, linspace, trailing");
  betas_ = detail::make_betas(cfg_);
  alphas_cumprod_ = torch::cumprod(1.0 - betas_, 0);
  alphas_cumprod_values_.assign(alphas_cumprod_.data_ptr<float>(), alphas_cumprod_.data_ptr<float>() + alphas_cumprod_.numel());
}

void Scheduler::unsupported(const std::string& key, const std::string& value, const std::string& allowed) const {
  throw UnsupportedError(fmt::format("{}: key '{}': {} does not support '{}' (supported: {})",
                                     cfg_.source.empty() ? "<scheduler config>" : cfg_.source, key, cfg_.class_name,
                                     value, allowed));
}

double Scheduler::timestep(int step_index) const {
  check_index(step_index, "timestep");
  return timestep_values_[static_cast<size_t>(step_index)];
}

int Scheduler::index_for_timestep(double t) const {
  std::vector<int> hits;
  for (size_t i = 0; i < timestep_values_.size(); ++i)
    if (timestep_values_[i] == t) hits.push_back(static_cast<int>(i));
  if (hits.empty()) throw Error(fmt::format("{}: timestep {} is not in the schedule", cfg_.class_name, t));
  return hits.size() > 1 ? hits[1] : hits[0];
}

void Scheduler::check_index(int step_index, const char* what) const {
  if (timestep_values_.empty()) throw Error(cfg_.class_name + "::" + what + ": call set_timesteps first");
  if (step_index < 0 || step_index >= num_steps())
    throw Error(fmt::format("{}::{}: step index {} out of range [0, {})", cfg_.class_name, what, step_index, num_steps()));
}

void Scheduler::set_timestep_values(at::Tensor t) {
  timesteps_ = t.contiguous();
  auto d = timesteps_.to(torch::kDouble);
  timestep_values_.assign(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

void Scheduler::set_sigmas(at::Tensor s) {
  sigmas_ = s.to(torch::kFloat).contiguous();
  sigma_values_.assign(sigmas_.data_ptr<float>(), sigmas_.data_ptr<float>() + sigmas_.numel());
}

float Scheduler::alpha_cumprod_at(int64_t t) const {
  auto n = static_cast<int64_t>(alphas_cumprod_values_.size());
  if (t < 0) t += n;  // python indexing, as alphas_cumprod[prev_timestep] does for prev_timestep < 0
  if (t < 0 || t >= n) throw Error(fmt::format("{}: timestep {} outside the {} train timesteps", cfg_.class_name, t, n));
  return alphas_cumprod_values_[static_cast<size_t>(t)];
}

at::Tensor Scheduler::add_noise(const at::Tensor& original, const at::Tensor& noise, const at::Tensor& timesteps) const {
  return detail::add_noise_alphas(alphas_cumprod_, original, noise, timesteps);
}

}  // namespace clipgen::schedulers

// ---------------------------------------------------------------------------------------------------
// Factory: YAML sampler names and diffusers class names (below).

#include "models/schedulers/ddim.h"
#include "models/schedulers/dpm_solver_multistep.h"
#include "models/schedulers/euler_ancestral_discrete.h"
#include "models/schedulers/euler_discrete.h"
#include "models/schedulers/lcm.h"
#include "models/schedulers/pndm.h"

namespace clipgen::schedulers {

const std::vector<std::string>& sampler_names() {
  static const std::vector<std::string> v = {"ddim", "pndm", "euler", "euler_ancestral", "dpmpp_2m", "lcm", "svd_euler"};
  return v;
}

static const std::map<std::string, std::string>& sampler_classes() {
  static const std::map<std::string, std::string> m = {
      {"ddim", "DDIMScheduler"},
      {"pndm", "PNDMScheduler"},
      {"euler", "EulerDiscreteScheduler"},
      {"euler_ancestral", "EulerAncestralDiscreteScheduler"},
      {"dpmpp_2m", "DPMSolverMultistepScheduler"},
      {"lcm", "LCMScheduler"},
      {"svd_euler", "EulerDiscreteScheduler"},
  };
  return m;
}

SchedulerConfig sampler_config(const SchedulerConfig& model_cfg, const std::string& name, const std::string& sigma_schedule) {
  std::string cls;
  if (auto it = sampler_classes().find(name); it != sampler_classes().end()) {
    cls = it->second;
  } else if (std::find(supported_classes().begin(), supported_classes().end(), name) != supported_classes().end()) {
    cls = name;
  } else {
    throw UnsupportedError(fmt::format("unknown sampler '{}' (valid: {}; or a diffusers class: {})", name,
                                       join(sampler_names()), join(supported_classes())));
  }
  SchedulerConfig c = model_cfg.for_class(cls);
  if (name == "pndm") {
    c.skip_prk_steps = true;  // PLMS, as Stable Diffusion ships it
  } else if (name == "dpmpp_2m") {
    c.algorithm_type = "dpmsolver++";
    c.solver_order = 2;
    c.solver_type = "midpoint";
  } else if (name == "svd_euler") {
    // Stable Video Diffusion's scheduler (EDM preconditioning through v-prediction Euler).
    c.use_karras_sigmas = true;
    c.sigma_min = 0.002;
    c.sigma_max = 700.0;
    c.prediction_type = "v_prediction";
    c.timestep_type = "continuous";
    c.timestep_spacing = "leading";
    c.interpolation_type = "linear";
  }
  if (sigma_schedule == "karras") {
    if (cls != "EulerDiscreteScheduler" && cls != "DPMSolverMultistepScheduler")
      throw UnsupportedError(fmt::format("sampler '{}' has no Karras sigma schedule (sigma_schedule: karras works with "
                                         "euler, dpmpp_2m, svd_euler)", name));
    c.use_karras_sigmas = true;
  } else if (sigma_schedule != "default") {
    throw UnsupportedError(fmt::format("unknown sigma_schedule '{}' (valid: default, karras)", sigma_schedule));
  }
  return c;
}

std::unique_ptr<Scheduler> make_scheduler_for_sampler(const SchedulerConfig& model_cfg, const std::string& name,
                                                      const std::string& sigma_schedule) {
  SchedulerConfig c = sampler_config(model_cfg, name, sigma_schedule);
  const std::string& cls = c.class_name;
  if (cls == "DDIMScheduler") return std::make_unique<DDIMScheduler>(std::move(c));
  if (cls == "PNDMScheduler") return std::make_unique<PNDMScheduler>(std::move(c));
  if (cls == "EulerDiscreteScheduler") return std::make_unique<EulerDiscreteScheduler>(std::move(c));
  if (cls == "EulerAncestralDiscreteScheduler") return std::make_unique<EulerAncestralDiscreteScheduler>(std::move(c));
  if (cls == "DPMSolverMultistepScheduler") return std::make_unique<DPMSolverMultistepScheduler>(std::move(c));
  if (cls == "LCMScheduler") return std::make_unique<LCMScheduler>(std::move(c));
  throw UnsupportedError("scheduler class '" + cls + "' is not supported");
}

std::unique_ptr<Scheduler> make_scheduler(const std::string& name, const SchedulerConfig& cfg) {
  return make_scheduler_for_sampler(cfg, name, "default");
}

}  // namespace clipgen::schedulers
