// `clipgen fixture check`: runs a reference fixture folder (the shared/fixtures format: fixture.json,
// config, weights, inputs.safetensors, outputs.safetensors, intermediates.safetensors) through clipgen's
// implementation of its class and compares every output with the fixture README's tolerance rule
// max|out - ref| <= atol + rtol * max|ref|.
//
// Each model/scheduler/pipeline family contributes a Runner, registered by the fixture's "class"
// (or, for fixtures without one, by the first component of its "fixture" name: "clip_tokenizer",
// "rng", "single_file"). Runners read what they need from the FixtureContext and call compare().
//
// Device: a FixtureContext carries the device the fixture runs on (`clipgen fixture check --device`,
// default cpu). Model runners move their model and inputs there (to_device); compare() always compares
// on the CPU in float64. Runners that never call to_device (tokenizer, rng, schedulers, single-file
// mapping) run on the CPU whatever the device; FixtureResult::ran_on says where a fixture ran.
#pragma once
#include <filesystem>
#include <iosfwd>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "models/io/safetensors.h"

namespace clipgen::parity {

struct Tolerance {
  double atol = 0, rtol = 0;
  static Tolerance exact() { return {0, 0}; }
  static Tolerance model() { return {1e-4, 1e-4}; }       // single model forward, intermediates
  static Tolerance trajectory() { return {1e-5, 1e-5}; }  // scheduler trajectories
  static Tolerance schedule() { return {0, 1e-6}; }       // scheduler timesteps/sigmas (float)
  static Tolerance pipeline() { return {1e-3, 1e-3}; }    // end-to-end pipelines
  // End results of a pipeline fixture run with the models in bf16/fp16 (--precision): the bounds
  // docs/shot-schema.md#precision states for bf16 (fp16 keeps 3 more mantissa bits).
  static Tolerance reduced_image() { return {0.06, 0}; }    // decoded pixels in [0, 1]
  static Tolerance reduced_latents() { return {0, 0.07}; }  // of the reference's largest magnitude
  static Tolerance reduced_frames() { return {0.12, 0}; }   // video frames in [0, 1]
};

struct Comparison {
  std::string name;
  double max_abs_error = 0;
  double allowed = 0;
  bool pass = false;
  std::string note;  // e.g. a shape mismatch
};

class FixtureContext {
public:
  explicit FixtureContext(std::filesystem::path dir, c10::Device device = c10::Device(c10::kCPU),
                          c10::ScalarType dtype = c10::kFloat);

  const std::filesystem::path& dir() const { return dir_; }
  // The device model runners run on. Reading it does not count as using it.
  const c10::Device& device() const { return device_; }
  // `t` (or input `name`) moved to device(); marks the fixture as run on that device.
  at::Tensor to_device(const at::Tensor& t);
  at::Tensor device_input(const std::string& name) { return to_device(input(name)); }
  // Marks the fixture as run on device() (for runners that move a model or stage themselves).
  void use_device() { device_used_ = true; }
  bool device_used() const { return device_used_; }
  // The precision requested for the models (`--precision`). Only the pipeline runners honour a reduced
  // one: they run the stage with the model in it, call use_precision(), and compare the end results
  // (image/latents, frames) within the bounds docs/shot-schema.md#precision states. Other runners run fp32.
  c10::ScalarType dtype() const { return dtype_; }
  void use_precision() { precision_used_ = true; }
  bool precision_used() const { return precision_used_; }
  const nlohmann::json& fixture() const { return fixture_; }  // fixture.json
  std::string class_name() const;                              // "class", or "" when absent
  nlohmann::json config() const;                               // the config file named by fixture.json (or config.json)
  std::filesystem::path weights_path() const;                  // dir / fixture["weights"]

  const io::TensorMap& inputs();         // inputs.safetensors (lazily loaded)
  const io::TensorMap& outputs();        // outputs.safetensors
  const io::TensorMap& intermediates();  // intermediates.safetensors, empty if absent
  const at::Tensor& input(const std::string& name);    // throws naming the fixture if absent
  const at::Tensor& output(const std::string& name);

  // Compares `actual` with the reference tensor `name` in outputs (or `ref` when given). Records the result.
  void compare(const std::string& name, const at::Tensor& actual, Tolerance tol);
  void compare(const std::string& name, const at::Tensor& actual, const at::Tensor& ref, Tolerance tol);
  // Compares `actual` with intermediates.safetensors[name] (as "intermediate:<name>") when the fixture
  // recorded it; intermediates over 65 536 elements are not stored, so absent names are skipped.
  void compare_intermediate(const std::string& name, const at::Tensor& actual);
  void record(Comparison c) { results_.push_back(std::move(c)); }
  // Fails a named check with a message (e.g. a feature the fixture needs is missing).
  void fail(const std::string& name, const std::string& note) { results_.push_back({name, 0, 0, false, note}); }

  const std::vector<Comparison>& results() const { return results_; }

private:
  std::filesystem::path dir_;
  c10::Device device_;
  bool device_used_ = false;
  c10::ScalarType dtype_ = c10::kFloat;
  bool precision_used_ = false;
  nlohmann::json fixture_;
  io::TensorMap inputs_, outputs_, intermediates_;
  bool inputs_loaded_ = false, outputs_loaded_ = false, intermediates_loaded_ = false;
  std::vector<Comparison> results_;
};

using Runner = std::function<void(FixtureContext&)>;

// The runner table, filled once by register_all_runners() (parity/registry.cpp).
std::map<std::string, Runner>& runners();

// Runs one fixture folder on `device`. Fixture folders may nest (e.g. schedulers/ddim/steps_4 is found
// through schedulers/ddim); check_tree() finds every fixture.json below `dir`. `ran_on`, when given,
// receives the device the runner actually used (cpu for CPU-only runners).
std::vector<Comparison> check_fixture(const std::filesystem::path& dir, c10::Device device = c10::Device(c10::kCPU),
                                      c10::Device* ran_on = nullptr, c10::ScalarType dtype = c10::kFloat,
                                      c10::ScalarType* ran_in = nullptr);

struct FixtureResult {
  std::filesystem::path dir;
  std::vector<Comparison> comparisons;
  std::string error;  // an exception while running, or "no runner for class X"
  c10::Device ran_on = c10::Device(c10::kCPU);
  c10::ScalarType ran_in = c10::kFloat;  // the models' precision (fp32 for runners without reduced precision)
  bool pass() const;
};
std::vector<FixtureResult> check_tree(const std::filesystem::path& dir, c10::Device device = c10::Device(c10::kCPU),
                                      c10::ScalarType dtype = c10::kFloat);

// Formats one line per comparison: "<fixture> <name> max_abs_err=… allowed=… PASS|FAIL". When
// `requested` is not the CPU, each line also says where the fixture ran ("on=cuda:0", or
// "on=cpu (CPU-only runner)").
std::string format_results(const std::vector<FixtureResult>& results,
                           c10::Device requested = c10::Device(c10::kCPU), c10::ScalarType dtype = c10::kFloat);

// Parses a --device value for fixture checks: "cpu", "cuda" (= cuda:0) or "cuda:N". Throws UsageError
// (exit 2) for anything else or for a CUDA device this process cannot use (CPU-only LibTorch, no GPU,
// index out of range).
c10::Device parse_fixture_device(const std::string& spec);

// `clipgen fixture check`: runs every fixture below each of `dirs` on `device`, prints one line per
// comparison (and a summary line) to `out`, returns 0 when all pass, else 1. On CUDA it first disables
// TF32 in cuBLAS and cuDNN so that fp32 results hold the fixtures' fp32 tolerances.
// `dtype` (--precision, parse_fixture_precision): see FixtureContext::dtype(); with a reduced precision
// each line also says what the fixture ran in ("in=bf16", or "in=fp32 (fp32-only runner)").
int run_fixture_check(const std::vector<std::string>& dirs, c10::Device device, std::ostream& out,
                      c10::ScalarType dtype = c10::kFloat);

// Parses a --precision value for fixture checks: fp32, bf16 or fp16 (fp16 only on CUDA: resolve_precision's
// rule). Throws UsageError (exit 2) otherwise.
c10::ScalarType parse_fixture_precision(const std::string& spec, c10::Device device);

// Pure comparison helper (no recording), also used by tests.
Comparison compare_tensors(const std::string& name, const at::Tensor& actual, const at::Tensor& ref, Tolerance tol);

}  // namespace clipgen::parity
