#include "train/phase_runner.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/png.h"

namespace clipgen::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void collect_params(torch::nn::Module& module, const std::string& prefix, NamedParams& out) {
  for (const auto& item : module.named_parameters(/*recurse=*/true)) out.emplace_back(prefix + item.key(), item.value());
}

// AdamW over the named parameters, with its per-parameter state addressable by name.
struct PhaseRunner::Adam {
  torch::optim::AdamW opt;
  Adam(const NamedParams& p, const configs::TrainPhase& s)
      : opt(params_of(p), torch::optim::AdamWOptions(s.lr).weight_decay(s.weight_decay)) {}
  static std::vector<at::Tensor> params_of(const NamedParams& p) {
    std::vector<at::Tensor> v;
    for (const auto& [_, t] : p) v.push_back(t);
    return v;
  }
  // The optimizer's state map is keyed by the parameter's TensorImpl: a string in LibTorch 1.x, the
  // pointer itself in later versions.
  template <class Map>
  static typename Map::key_type key_of(const Map&, const at::Tensor& t) {
    using Key = typename Map::key_type;
    if constexpr (std::is_same_v<Key, std::string>) {
      std::ostringstream os;
      os << t.unsafeGetTensorImpl();
      return os.str();
    } else {
      return static_cast<Key>(t.unsafeGetTensorImpl());
    }
  }
  torch::optim::AdamWParamState* state(const at::Tensor& t) {
    auto& m = opt.state();
    auto it = m.find(key_of(m, t));
    return it == m.end() ? nullptr : static_cast<torch::optim::AdamWParamState*>(it->second.get());
  }
  void set_state(const at::Tensor& t, std::unique_ptr<torch::optim::AdamWParamState> s) {
    auto& m = opt.state();
    m[key_of(m, t)] = std::move(s);
  }
  void set_lr(double lr) {
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  }
};

PhaseRunner::PhaseRunner(PhaseOptions opt, NamedParams params) : opt_(std::move(opt)), params_(std::move(params)) {
  adam_ = std::make_shared<Adam>(params_, opt_.settings);
  if (opt_.settings.ema > 0) {
    torch::NoGradGuard ng;
    for (const auto& [n, t] : params_) ema_[n] = t.detach().clone();
  }
}

double PhaseRunner::lr_at(const configs::TrainPhase& p, int64_t step) {
  if (p.warmup > 0 && step < p.warmup) return p.lr * static_cast<double>(step + 1) / static_cast<double>(p.warmup);
  // Cosine from lr to lr/10 over the steps after the warm-up.
  const double span = std::max<double>(1.0, static_cast<double>(p.steps - p.warmup));
  const double u = std::clamp(static_cast<double>(step - p.warmup) / span, 0.0, 1.0);
  return p.lr * (0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * u)));
}

static fs::path state_path(const PhaseOptions& o) { return o.work_dir / (o.name + "-state.safetensors"); }
static fs::path loss_csv(const PhaseOptions& o) { return o.work_dir / (o.name + "-loss.csv"); }
static fs::path eval_csv(const PhaseOptions& o) { return o.work_dir / (o.name + "-eval.csv"); }

static std::string fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return fmt::format("{:016x}", h);
}

// Keeps the CSV rows of steps before `step` (a resumed run rewrites the rest exactly).
static void truncate_csv(const fs::path& p, int64_t step) {
  std::ifstream in(p);
  if (!in) return;
  std::string line, kept;
  bool header = true;
  while (std::getline(in, line)) {
    if (header || std::stoll(line.substr(0, line.find(','))) < step) kept += line + "\n";
    header = false;
  }
  in.close();
  std::ofstream(p, std::ios::trunc) << kept;
}

int64_t PhaseRunner::resume(bool fresh) {
  fs::create_directories(opt_.work_dir);
  const auto path = state_path(opt_);
  if (fresh || !fs::exists(path)) {
    if (fresh) {
      fs::remove(path);
      fs::remove(loss_csv(opt_));
      fs::remove(eval_csv(opt_));
    }
    step_ = 0;
    return 0;
  }
  const auto f = io::SafetensorsFile::open(path);
  const auto meta = f->metadata();
  const auto all = f->load_all();
  torch::NoGradGuard ng;
  for (auto& [n, t] : params_) {
    auto get = [&](const std::string& k) -> const at::Tensor& {
      auto it = all.find(k);
      if (it == all.end()) throw ModelLoadError(path.string(), k, "training state has no tensor '" + k + "'");
      return it->second;
    };
    t.copy_(get("param." + n));
    if (!ema_.empty()) ema_[n].copy_(get("ema." + n));
    if (all.count("adam.m." + n)) {
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(get("adam.step." + n).item<int64_t>());
      s->exp_avg(get("adam.m." + n).clone().to(t.device()));
      s->exp_avg_sq(get("adam.v." + n).clone().to(t.device()));
      adam_->set_state(t, std::move(s));
    }
  }
  step_ = std::stoll(meta.at("step"));
  seconds_ = std::stod(meta.at("seconds"));
  if (meta.count("recipe") && meta.at("recipe") != fnv1a(opt_.recipe_text))
    spdlog::warn("{}: the recipe changed since this checkpoint was written; continuing with the new settings", path.string());
  truncate_csv(loss_csv(opt_), step_);
  truncate_csv(eval_csv(opt_), step_ + 1);
  spdlog::info("[{}] resumed at step {} ({:.1f} min trained) from {}", opt_.name, step_, seconds_ / 60, path.string());
  return step_;
}

void PhaseRunner::save_state() {
  io::TensorMap m;
  for (const auto& [n, t] : params_) {
    m["param." + n] = t.detach().cpu();
    if (!ema_.empty()) m["ema." + n] = ema_.at(n).cpu();
    if (auto* s = adam_->state(t)) {
      m["adam.m." + n] = s->exp_avg().cpu();
      m["adam.v." + n] = s->exp_avg_sq().cpu();
      m["adam.step." + n] = torch::tensor({s->step()}, torch::kInt64);
    }
  }
  io::save_safetensors(state_path(opt_), m,
                       {{"step", std::to_string(step_)},
                        {"seconds", fmt::format("{:.3f}", seconds_)},
                        {"phase", opt_.name},
                        {"recipe", fnv1a(opt_.recipe_text)}});
}

io::TensorMap PhaseRunner::export_weights() const {
  io::TensorMap m;
  for (const auto& [n, t] : params_) m[n] = (ema_.empty() ? t.detach() : ema_.at(n)).cpu();
  return m;
}

void PhaseRunner::use_export_weights() {
  if (ema_.empty()) return;
  torch::NoGradGuard ng;
  for (auto& [n, t] : params_) t.copy_(ema_.at(n));
}

bool PhaseRunner::run(const std::function<StepLoss(int64_t)>& loss,
                      const std::function<std::map<std::string, double>(int64_t)>& eval) {
  const auto& s = opt_.settings;
  const auto start = Clock::now();
  auto last_ckpt = start, last_print = start;
  const double seconds_before = seconds_;
  const int64_t first = step_;
  const bool tty = isatty(STDERR_FILENO) != 0;
  std::ofstream csv(loss_csv(opt_), std::ios::app);
  std::ofstream ecsv;
  bool header_written = fs::exists(loss_csv(opt_)) && fs::file_size(loss_csv(opt_)) > 0;
  std::vector<std::string> part_names;
  double smooth = 0;
  std::vector<at::Tensor> plist;
  for (const auto& [_, t] : params_) plist.push_back(t);

  auto do_eval = [&](int64_t at_step) {
    if (!eval) return;
    const auto figures = eval(at_step);
    const bool head = !fs::exists(eval_csv(opt_)) || fs::file_size(eval_csv(opt_)) == 0;
    if (!ecsv.is_open()) ecsv.open(eval_csv(opt_), std::ios::app);
    if (head) {
      ecsv << "step";
      for (const auto& [k, _] : figures) ecsv << "," << k;
      ecsv << "\n";
    }
    ecsv << at_step;
    std::string line;
    for (const auto& [k, v] : figures) {
      ecsv << "," << fmt::format("{:.4f}", v);
      line += fmt::format(" {} {:.3f}", k, v);
    }
    ecsv << "\n" << std::flush;
    spdlog::info("[{}] eval at step {}:{}", opt_.name, at_step, line);
  };

  while (step_ < s.steps) {
    const double lr = lr_at(s, step_);
    adam_->set_lr(lr);
    adam_->opt.zero_grad();
    StepLoss l = loss(step_);
    l.loss.backward();
    double gnorm = 0;
    if (s.grad_clip > 0) gnorm = torch::nn::utils::clip_grad_norm_(plist, s.grad_clip);
    adam_->opt.step();
    if (!ema_.empty()) {
      torch::NoGradGuard ng;
      const double d = std::min(s.ema, (1.0 + static_cast<double>(step_)) / (10.0 + static_cast<double>(step_)));
      for (auto& [n, t] : params_) ema_[n].mul_(d).add_(t.detach(), 1 - d);
    }
    const double lv = l.loss.item<double>();
    if (!std::isfinite(lv)) throw Error(fmt::format("[{}] step {}: the loss is not finite ({})", opt_.name, step_, lv));
    smooth = step_ == first ? lv : 0.98 * smooth + 0.02 * lv;
    if (!header_written) {
      csv << "step,loss,lr,grad_norm,seconds";
      for (const auto& [k, _] : l.parts) csv << "," << k;
      csv << "\n";
      header_written = true;
    }
    const auto now = Clock::now();
    seconds_ = seconds_before + std::chrono::duration<double>(now - start).count();
    csv << step_ << "," << fmt::format("{:.6f},{:.6g},{:.4f},{:.1f}", lv, lr, gnorm, seconds_);
    for (const auto& [_, v] : l.parts) csv << "," << fmt::format("{:.6f}", v);
    csv << "\n";
    ++step_;

    const double run_s = std::chrono::duration<double>(now - start).count();
    const double rate = static_cast<double>(step_ - first) / std::max(1e-9, run_s);
    const double eta = static_cast<double>(s.steps - step_) / std::max(1e-9, rate);
    if (tty || std::chrono::duration<double>(now - last_print).count() > 30 || step_ == s.steps || step_ - first == 1) {
      const int width = 30;
      const int filled = static_cast<int>(width * static_cast<double>(step_) / static_cast<double>(s.steps));
      const std::string bar = std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.');
      const std::string msg = fmt::format("[{}] [{}] {}/{} loss {:.4f} (avg {:.4f}) lr {:.2e} {:.2f} steps/s ETA {:02d}:{:02d}:{:02d}",
                                          opt_.name, bar, step_, s.steps, lv, smooth, lr, rate, static_cast<int>(eta) / 3600,
                                          static_cast<int>(eta) / 60 % 60, static_cast<int>(eta) % 60);
      if (tty)
        fmt::print(stderr, "\r{}\x1b[K", msg);
      else
        fmt::print(stderr, "{}\n", msg);
      last_print = now;
    }
    if (opt_.eval_every > 0 && step_ % opt_.eval_every == 0 && step_ < s.steps) do_eval(step_);
    const bool out_of_time = (opt_.max_minutes > 0 && run_s > opt_.max_minutes * 60) ||
                             (opt_.stop_at_step > 0 && step_ >= opt_.stop_at_step);
    if (std::chrono::duration<double>(now - last_ckpt).count() > opt_.checkpoint_minutes * 60 || step_ == s.steps || out_of_time) {
      csv.flush();
      save_state();
      write_plot();
      last_ckpt = Clock::now();
    }
    if (out_of_time && step_ < s.steps) {
      if (tty) fmt::print(stderr, "\n");
      spdlog::info("[{}] stopped at step {} after {:.1f} min; rerun to resume", opt_.name, step_, run_s / 60);
      return false;
    }
  }
  if (tty) fmt::print(stderr, "\n");
  if (first < s.steps) do_eval(step_);
  return true;
}

// The loss curve: log10(loss) against the step, raw (light) and smoothed (dark), grid lines at each decade.
void PhaseRunner::write_plot() const {
  std::ifstream in(loss_csv(opt_));
  std::string line;
  std::getline(in, line);
  std::vector<double> xs, ys;
  while (std::getline(in, line)) {
    const auto c1 = line.find(','), c2 = line.find(',', c1 + 1);
    if (c1 == std::string::npos) continue;
    xs.push_back(std::stod(line.substr(0, c1)));
    ys.push_back(std::log10(std::max(1e-8, std::stod(line.substr(c1 + 1, c2 - c1 - 1)))));
  }
  if (ys.size() < 2) return;
  const int W = 800, H = 400, m = 20;
  std::vector<uint8_t> img(static_cast<size_t>(W) * H * 3, 255);
  auto put = [&](int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    uint8_t* p = &img[(static_cast<size_t>(y) * W + x) * 3];
    p[0] = r, p[1] = g, p[2] = b;
  };
  const double y0 = std::floor(*std::min_element(ys.begin(), ys.end())), y1 = std::ceil(*std::max_element(ys.begin(), ys.end()));
  const double x1 = std::max(1.0, xs.back());
  auto px = [&](double x) { return m + static_cast<int>((W - 2 * m) * x / x1); };
  auto py = [&](double y) { return H - m - static_cast<int>((H - 2 * m) * (y - y0) / std::max(1e-9, y1 - y0)); };
  for (double d = y0; d <= y1 + 1e-9; d += 1)
    for (int x = m; x < W - m; ++x) put(x, py(d), 200, 200, 200);
  for (int y = m; y < H - m; ++y) put(m, y, 120, 120, 120);
  double sm = ys[0];
  for (size_t i = 0; i < ys.size(); ++i) {
    put(px(xs[i]), py(ys[i]), 170, 200, 240);
    sm = 0.98 * sm + 0.02 * ys[i];
    const int x = px(xs[i]), y = py(sm);
    put(x, y, 20, 60, 160);
    put(x, y + 1, 20, 60, 160);
  }
  write_png_rgb(opt_.work_dir / (opt_.name + "-loss.png"), img.data(), W, H);
}

}  // namespace clipgen::train
