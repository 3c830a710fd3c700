#include "parity/fixture.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <ostream>

#include "core/error.h"
#include "core/fs.h"
#include "models/io/diffusers_folder.h"
#include "models/runtime.h"

namespace clipgen::parity {
namespace fs = std::filesystem;

void register_all_runners();  // parity/registry.cpp

FixtureContext::FixtureContext(fs::path dir, c10::Device device, c10::ScalarType dtype)
    : dir_(std::move(dir)), device_(device), dtype_(dtype) {
  fixture_ = io::read_json(dir_ / "fixture.json");
}

at::Tensor FixtureContext::to_device(const at::Tensor& t) {
  device_used_ = true;
  return t.defined() ? t.to(device_) : t;
}

std::string FixtureContext::class_name() const {
  if (fixture_.contains("class") && fixture_["class"].is_string()) return fixture_["class"].get<std::string>();
  return "";
}

nlohmann::json FixtureContext::config() const {
  std::string name = fixture_.contains("config") && fixture_["config"].is_string() ? fixture_["config"].get<std::string>() : "config.json";
  return io::read_json(dir_ / name);
}

fs::path FixtureContext::weights_path() const {
  if (fixture_.contains("weights") && fixture_["weights"].is_string()) return dir_ / fixture_["weights"].get<std::string>();
  return dir_;
}

static void load_into(io::TensorMap& m, bool& loaded, const fs::path& p, bool optional) {
  if (loaded) return;
  loaded = true;
  if (optional && !fs::exists(p)) return;
  m = io::load_safetensors(p);
}

const io::TensorMap& FixtureContext::inputs() {
  load_into(inputs_, inputs_loaded_, dir_ / "inputs.safetensors", false);
  return inputs_;
}
const io::TensorMap& FixtureContext::outputs() {
  load_into(outputs_, outputs_loaded_, dir_ / "outputs.safetensors", false);
  return outputs_;
}
const io::TensorMap& FixtureContext::intermediates() {
  load_into(intermediates_, intermediates_loaded_, dir_ / "intermediates.safetensors", true);
  return intermediates_;
}

const at::Tensor& FixtureContext::input(const std::string& name) {
  const auto& m = inputs();
  auto it = m.find(name);
  if (it == m.end()) throw Error(dir_.string() + ": fixture has no input '" + name + "'");
  return it->second;
}

const at::Tensor& FixtureContext::output(const std::string& name) {
  const auto& m = outputs();
  auto it = m.find(name);
  if (it == m.end()) throw Error(dir_.string() + ": fixture has no output '" + name + "'");
  return it->second;
}

Comparison compare_tensors(const std::string& name, const at::Tensor& actual, const at::Tensor& ref, Tolerance tol) {
  Comparison c;
  c.name = name;
  if (actual.sizes() != ref.sizes()) {
    c.note = fmt::format("shape mismatch: got {}, expected {}", fmt::join(actual.sizes(), "x"), fmt::join(ref.sizes(), "x"));
    c.max_abs_error = std::numeric_limits<double>::infinity();
    return c;
  }
  auto a = actual.detach().to(torch::kCPU, torch::kDouble);
  auto r = ref.detach().to(torch::kCPU, torch::kDouble);
  double max_ref = r.numel() ? r.abs().max().item<double>() : 0.0;
  c.max_abs_error = r.numel() ? (a - r).abs().max().item<double>() : 0.0;
  if (std::isnan(c.max_abs_error)) c.max_abs_error = std::numeric_limits<double>::infinity();
  c.allowed = tol.atol + tol.rtol * max_ref;
  c.pass = c.max_abs_error <= c.allowed;
  return c;
}

void FixtureContext::compare(const std::string& name, const at::Tensor& actual, Tolerance tol) {
  const auto& m = outputs();
  auto it = m.find(name);
  if (it == m.end()) {
    fail(name, "no reference output of that name");
    return;
  }
  compare(name, actual, it->second, tol);
}

void FixtureContext::compare(const std::string& name, const at::Tensor& actual, const at::Tensor& ref, Tolerance tol) {
  results_.push_back(compare_tensors(name, actual, ref, tol));
}

void FixtureContext::compare_intermediate(const std::string& name, const at::Tensor& actual) {
  const auto& m = intermediates();
  auto it = m.find(name);
  if (it != m.end()) compare("intermediate:" + name, actual, it->second, Tolerance::model());
}

std::map<std::string, Runner>& runners() {
  static std::map<std::string, Runner> table;
  return table;
}

static std::string runner_key(const FixtureContext& ctx) {
  auto cls = ctx.class_name();
  if (!cls.empty()) return cls;
  std::string name = ctx.fixture().value("fixture", ctx.dir().filename().string());
  return name.substr(0, name.find('/'));
}

std::vector<Comparison> check_fixture(const fs::path& dir, c10::Device device, c10::Device* ran_on,
                                      c10::ScalarType dtype, c10::ScalarType* ran_in) {
  static bool registered = [] {
    register_all_runners();
    return true;
  }();
  (void)registered;
  FixtureContext ctx(dir, device, dtype);
  auto key = runner_key(ctx);
  auto it = runners().find(key);
  if (it == runners().end()) throw Error(dir.string() + ": no fixture runner for '" + key + "'");
  c10::InferenceMode guard;
  it->second(ctx);
  if (ran_on) *ran_on = ctx.device_used() ? device : c10::Device(c10::kCPU);
  if (ran_in) *ran_in = ctx.precision_used() ? dtype : c10::kFloat;
  if (ctx.results().empty()) throw Error(dir.string() + ": runner '" + key + "' compared nothing");
  return ctx.results();
}

bool FixtureResult::pass() const {
  if (!error.empty() || comparisons.empty()) return false;
  for (const auto& c : comparisons)
    if (!c.pass) return false;
  return true;
}

std::vector<FixtureResult> check_tree(const fs::path& dir, c10::Device device, c10::ScalarType dtype) {
  std::vector<fs::path> dirs;
  if (fs::exists(dir / "fixture.json")) {
    dirs.push_back(dir);
  } else if (fs::is_directory(dir)) {
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file() && e.path().filename() == "fixture.json") dirs.push_back(e.path().parent_path());
    std::sort(dirs.begin(), dirs.end());
  }
  if (dirs.empty()) throw Error(dir.string() + ": no fixture.json found");
  std::vector<FixtureResult> out;
  for (const auto& d : dirs) {
    FixtureResult r;
    r.dir = d;
    try {
      r.comparisons = check_fixture(d, device, &r.ran_on, dtype, &r.ran_in);
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string format_results(const std::vector<FixtureResult>& results, c10::Device requested, c10::ScalarType dtype) {
  std::string s;
  const bool show_device = !requested.is_cpu();
  const bool show_precision = dtype != c10::kFloat;
  for (const auto& r : results) {
    if (!r.error.empty()) {
      s += fmt::format("{}  ERROR  {}\n", r.dir.string(), r.error);
      continue;
    }
    std::string on;
    if (show_device) on = r.ran_on.is_cpu() ? "  on=cpu (CPU-only runner)" : "  on=" + r.ran_on.str();
    if (show_precision)
      on += r.ran_in == dtype ? "  in=" + precision_name(dtype) : std::string("  in=fp32 (fp32-only runner)");
    for (const auto& c : r.comparisons) {
      s += fmt::format("{}  {:<40} max_abs_err={:<11.3e} allowed={:<11.3e} {}{}{}\n", r.dir.string(), c.name,
                       c.max_abs_error, c.allowed, c.pass ? "PASS" : "FAIL", c.note.empty() ? "" : "  (" + c.note + ")", on);
    }
  }
  return s;
}

c10::Device parse_fixture_device(const std::string& spec) {
  const std::string what = "--device '" + spec + "'";
  if (spec == "cpu") return c10::Device(c10::kCPU);
  long index = 0;
  if (spec != "cuda") {
    if (spec.rfind("cuda:", 0) != 0) throw UsageError(what + ": expected cpu, cuda or cuda:N");
    const std::string n = spec.substr(5);
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 4)
      throw UsageError(what + ": expected cpu, cuda or cuda:N");
    index = std::stol(n);
  }
  const auto count = static_cast<long>(torch::cuda::device_count());
  if (count == 0) {
    const std::string cfg = at::show_config();
    const bool cuda_build = cfg.find("USE_CUDA=ON") != std::string::npos || cfg.find("USE_CUDA=1") != std::string::npos;
    throw UsageError(what + ": no CUDA device is available (" +
                     (cuda_build ? std::string("LibTorch " TORCH_VERSION " is a CUDA build, but it sees no GPU")
                                 : std::string("LibTorch " TORCH_VERSION " is a CPU-only build")) +
                     ")");
  }
  if (index >= count)
    throw UsageError(what + ": not available (" + std::to_string(count) + " CUDA device(s): cuda:0..cuda:" +
                     std::to_string(count - 1) + ")");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

c10::ScalarType parse_fixture_precision(const std::string& spec, c10::Device device) {
  if (spec != "fp32" && spec != "bf16" && spec != "fp16")
    throw UsageError("--precision '" + spec + "': expected fp32, bf16 or fp16");
  try {
    return resolve_precision(spec, device);
  } catch (const UnsupportedError& e) {
    throw UsageError("--precision " + spec + ": " + e.what());
  }
}

int run_fixture_check(const std::vector<std::string>& dirs, c10::Device device, std::ostream& out,
                      c10::ScalarType dtype) {
  if (device.is_cuda()) {
    // fp32 fixtures hold 1e-4 tolerances; TF32 matmuls/convolutions (10-bit mantissa) do not.
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  bool ok = true;
  size_t fixtures = 0, on_device = 0, errors = 0, comparisons = 0, failed = 0, in_precision = 0;
  for (const auto& d : dirs) {
    auto res = check_tree(d, device, dtype);
    out << format_results(res, device, dtype) << std::flush;
    for (const auto& r : res) {
      ok = ok && r.pass();
      ++fixtures;
      on_device += r.error.empty() && r.ran_on == device;
      in_precision += r.error.empty() && r.ran_in == dtype;
      comparisons += r.comparisons.size();
      for (const auto& c : r.comparisons) failed += !c.pass;
      errors += !r.error.empty();
    }
  }
  if (!device.is_cpu())
    out << fmt::format("summary: device={} fixtures={} ran_on_device={} cpu_only={} errors={} comparisons={} failed={} tf32=off\n",
                       device.str(), fixtures, on_device, fixtures - on_device - errors, errors, comparisons, failed);
  if (dtype != c10::kFloat)
    out << fmt::format("summary: precision={} fixtures={} ran_in_precision={} fp32_only={} errors={} failed={}\n",
                       precision_name(dtype), fixtures, in_precision, fixtures - in_precision - errors, errors, failed);
  return ok ? 0 : 1;
}

}  // namespace clipgen::parity
