#include "pipeline/graph.h"

#include <algorithm>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <tbb/flow_graph.h>

#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <thread>

#include "core/error.h"
#include "pipeline/progress.h"

namespace clipgen::pipeline {
namespace flow = tbb::flow;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------------
// StageContext / ShotRun

const configs::Shot& StageContext::shot() const { return run_.shot(); }
const GenerationPlan& StageContext::plan() const { return run_.plan(); }
void StageContext::throw_if_cancelled() const {
  if (cancelled()) throw CancelledError();
}

ShotRun::ShotRun(const configs::Shot& shot, int index, std::shared_ptr<ShotRenderer> renderer, GenerationPlan plan,
                 std::unique_ptr<CheckpointStore> checkpoints)
    : shot_(shot), index_(index), renderer_(std::move(renderer)), plan_(plan), checkpoints_(std::move(checkpoints)) {
  report_.id = shot.id;
  report_.output = shot.output;
  report_.frames = shot.frames;
  report_.duration = shot.duration;
  report_.seed = shot.seed;
  report_.renderer = renderer_ ? renderer_->name() : "";
}

void ShotRun::add_seconds(const std::string& stage, double seconds) {
  std::lock_guard lock(mutex_);
  report_.stage_seconds[stage] += seconds;
}
void ShotRun::add_warning(const std::string& message) {
  std::lock_guard lock(mutex_);
  report_.warnings.push_back(message);
}
void ShotRun::add_device(const std::string& device, const std::string& precision) {
  std::lock_guard lock(mutex_);
  if (std::find(report_.devices.begin(), report_.devices.end(), device) == report_.devices.end())
    report_.devices.push_back(device);
  if (!precision.empty()) report_.precision[device] = precision;
}
void ShotRun::add_resumed(const std::string& stage) {
  std::lock_guard lock(mutex_);
  report_.resumed_stages.push_back(stage);
}
void ShotRun::set_status(ShotStatus s, const std::string& error) {
  std::lock_guard lock(mutex_);
  report_.status = s;
  if (!error.empty()) report_.error = error;
}
ShotStatus ShotRun::status() const {
  std::lock_guard lock(mutex_);
  return report_.status;
}
ShotReport ShotRun::report() const {
  ShotReport r;
  {
    std::lock_guard lock(mutex_);
    r = report_;
  }
  if (r.status != ShotStatus::Done && r.status != ShotStatus::Skipped && checkpoints_) r.partial = checkpoints_->files();
  return r;
}

RenderGraph::RenderGraph(DevicePool& devices, OutputStages outputs, GraphOptions options, Progress* progress)
    : devices_(devices), outputs_(std::move(outputs)), options_(options), progress_(progress) {
  if (options_.max_shots_in_flight < 1) options_.max_shots_in_flight = 1;
  if (options_.max_batches_in_flight < 1) options_.max_batches_in_flight = 1;
}

// ---------------------------------------------------------------------------------------------------
// The run

namespace {

using CondPtr = std::shared_ptr<Conditioning>;
using KfPtr = std::shared_ptr<KeyframeLatents>;
using BatchPtr = std::shared_ptr<FrameBatch>;

void bump_peak(std::atomic<int>& now, std::atomic<int>& peak) {
  const int v = now.fetch_add(1) + 1;
  int p = peak.load();
  while (v > p && !peak.compare_exchange_weak(p, v)) {
  }
}

std::string segment_name(int s) { return fmt::format("segment-{:04}", s); }

io::TensorMap pack(const at::Tensor& latents, const io::TensorMap& extra) {
  io::TensorMap m;
  if (latents.defined()) m["latents"] = latents;
  for (const auto& [k, v] : extra)
    if (v.defined()) m["extra." + k] = v;
  return m;
}

void unpack(io::TensorMap&& m, at::Tensor& latents, io::TensorMap& extra) {
  for (auto& [k, v] : m) {
    if (k == "latents") latents = std::move(v);
    else if (k.rfind("extra.", 0) == 0) extra[k.substr(6)] = std::move(v);
  }
}

struct RunState {
  RenderGraph& owner;
  DevicePool& devices;
  const OutputStages& outputs;
  Progress* progress;
  GraphStats& stats;
  const CancelToken* cancel;
  std::atomic<bool> stop{false};  // a failure elsewhere: stage bodies stop early
  bool should_stop() const {
    return stop.load() || received_signal() != 0 || (cancel != nullptr && cancel->cancelled());
  }
  StageContext::Hooks hooks;
  flow::graph* g = nullptr;
  uint64_t total_batches = 0;
  // The first real failure: rethrown by run() even when another body's CancelledError (raised because
  // of it) reached oneTBB's exception slot first.
  std::mutex error_mutex;
  std::exception_ptr first_error;
  void record(std::exception_ptr e) {
    std::lock_guard lock(error_mutex);
    if (!first_error) first_error = e;
  }
};

// Runs one stage body for one shot: times it, and turns any exception into a clipgen::Error that names
// the shot and the stage (added once, here). Marks the shot failed (or cancelled) and stops the run.
template <class F>
auto guarded(RunState& rs, ShotRun& run, const char* stage, F&& body) -> decltype(body()) {
  const auto t0 = Clock::now();
  struct Timer {
    ShotRun& run;
    const char* stage;
    Clock::time_point t0;
    ~Timer() { run.add_seconds(stage, std::chrono::duration<double>(Clock::now() - t0).count()); }
  } timer{run, stage, t0};
  const std::string ctx = fmt::format("shot '{}', stage {}", run.id(), stage);
  try {
    if (rs.should_stop()) throw CancelledError();
    return body();
  } catch (CancelledError&) {
    rs.stop = true;
    run.set_status(ShotStatus::Cancelled);
    throw;
  } catch (Error& e) {
    rs.stop = true;
    e.add_context(ctx);
    run.set_status(ShotStatus::Failed, e.what());
    rs.record(std::current_exception());
    throw;
  } catch (const c10::Error& e) {
    rs.stop = true;
    Error err(ctx + ": " + e.what_without_backtrace());
    run.set_status(ShotStatus::Failed, err.what());
    rs.record(std::make_exception_ptr(err));
    throw err;
  } catch (const std::exception& e) {
    rs.stop = true;
    Error err(ctx + ": " + e.what());
    run.set_status(ShotStatus::Failed, err.what());
    rs.record(std::make_exception_ptr(err));
    throw err;
  }
}

// Gives a device token back to the token queue when a stage body ends, whatever way it ends.
struct TokenReturn {
  flow::queue_node<DeviceToken>& tokens;
  DeviceToken token;
  ~TokenReturn() { tokens.try_put(token); }
};

}  // namespace

void RenderGraph::run(const std::vector<std::shared_ptr<ShotRun>>& shots, const CancelToken* cancel) {
  if (shots.empty()) return;
  // Run-global batch numbers: shot 0's batches first, then shot 1's, …
  uint64_t next_seq = 0;
  for (const auto& s : shots) {
    if (s->plan().batches() < 1) throw Error(fmt::format("shot '{}': nothing to render (0 frames planned)", s->id()));
    s->set_first_batch_seq(next_seq);
    next_seq += static_cast<uint64_t>(s->plan().batches());
  }

  flow::graph g;
  RunState rs{*this, devices_, outputs_, progress_, stats_, cancel};
  rs.g = &g;
  rs.total_batches = next_seq;
  rs.hooks.cancelled = [&rs, &g] { return rs.should_stop() || g.is_cancelled(); };
  auto hooks_for = [&rs](std::shared_ptr<ShotRun> run) {
    StageContext::Hooks h;
    h.cancelled = rs.hooks.cancelled;
    Progress* p = rs.progress;
    ShotRun* r = run.get();
    h.progress = [p, r](std::string_view stage, int64_t done, int64_t total) {
      if (p) p->update(r->id(), stage, done, total);
    };
    h.warn = [r](const std::string& m) {
      r->add_warning(m);
      spdlog::warn("shot '{}': {}", r->id(), m);
    };
    return h;
  };
  std::map<const ShotRun*, StageContext::Hooks> hooks;
  std::map<const ShotRun*, std::atomic<int>> decoded;  // decode chunks finished per shot (any order)
  for (const auto& s : shots) {
    hooks[s.get()] = hooks_for(s);
    decoded[s.get()] = 0;
  }
  auto make_ctx = [&](const Device& d, ShotRun& run, const char* stage) {
    run.add_device(d.name, run.renderer().precision_on(run.shot(), d));
    return StageContext(d, run, stage, hooks.at(&run));
  };
  auto show = [&](ShotRun& run, std::string_view stage, int64_t done, int64_t total) {
    if (progress_) progress_->update(run.id(), stage, done, total);
  };

  // --- devices as tokens
  flow::queue_node<DeviceToken> tokens(g);

  // --- shot admission
  flow::queue_node<ShotJob> source(g);
  flow::limiter_node<ShotJob> shot_limit(g, static_cast<size_t>(options_.max_shots_in_flight));
  flow::function_node<ShotJob, ShotJob> admit(g, flow::unlimited, [&](ShotJob job) {
    bump_peak(stats_.shots_in_flight, stats_.peak_shots_in_flight);
    job.run->set_status(ShotStatus::Rendering);
    if (progress_) progress_->shot_started(job.run->id(), job.run->shot().frames);
    return job;
  });
  flow::queue_node<ShotJob> admitted(g);

  // --- text encode
  using TextIn = std::tuple<ShotJob, DeviceToken>;
  flow::join_node<TextIn, flow::reserving> text_join(g);
  flow::function_node<TextIn, CondPtr> text(g, flow::unlimited, [&](const TextIn& in) {
    TokenReturn back{tokens, std::get<1>(in)};
    const ShotJob& job = std::get<0>(in);
    ShotRun& run = *job.run;
    return guarded(rs, run, "text", [&] {
      auto cp = run.checkpoints();
      if (cp && cp->has_stage("keyframes")) return std::make_shared<Conditioning>(Conditioning{job, {}, true});
      DevicePool::Lease lease(devices_, std::get<1>(in).index);
      c10::InferenceMode guard;
      auto ctx = make_ctx(lease.device(), run, "text");
      show(run, "text", 0, 1);
      return std::make_shared<Conditioning>(run.renderer().encode_text(job, ctx));
    });
  });
  flow::queue_node<CondPtr> cond_q(g);

  // --- keyframes
  using KfIn = std::tuple<CondPtr, DeviceToken>;
  flow::join_node<KfIn, flow::reserving> kf_join(g);
  flow::function_node<KfIn, KfPtr> keyframes(g, flow::unlimited, [&](const KfIn& in) {
    TokenReturn back{tokens, std::get<1>(in)};
    CondPtr cond = std::get<0>(in);
    ShotRun& run = *cond->job.run;
    return guarded(rs, run, "keyframes", [&] {
      auto cp = run.checkpoints();
      if (cond->resumed) {
        auto kf = std::make_shared<KeyframeLatents>();
        kf->job = cond->job;
        unpack(*cp->load_stage("keyframes"), kf->latents, kf->extra);
        run.add_resumed("keyframes");
        return kf;
      }
      DevicePool::Lease lease(devices_, std::get<1>(in).index);
      c10::InferenceMode guard;
      auto ctx = make_ctx(lease.device(), run, "keyframes");
      show(run, "keyframes", 0, run.plan().keyframes);
      auto kf = std::make_shared<KeyframeLatents>(run.renderer().keyframes(std::move(*cond), ctx));
      if (cp) cp->save_stage("keyframes", pack(kf->latents, kf->extra));
      return kf;
    });
  });
  flow::queue_node<KfPtr> kf_q(g);

  // --- temporal (all segments of a shot, in order, on one device), then split into decode chunks
  using TmpIn = std::tuple<KfPtr, DeviceToken>;
  using TmpNode = flow::multifunction_node<TmpIn, std::tuple<DecodeWork>>;
  flow::join_node<TmpIn, flow::reserving> tmp_join(g);
  TmpNode temporal(g, flow::unlimited, [&](const TmpIn& in, TmpNode::output_ports_type& out) {
    KfPtr kf = std::get<0>(in);
    std::shared_ptr<ShotRun> runp = kf->job.run;
    ShotRun& run = *runp;
    std::shared_ptr<const ShotLatents> all;
    {
      TokenReturn back{tokens, std::get<1>(in)};
      all = guarded(rs, run, "temporal", [&] {
        auto lat = std::make_shared<ShotLatents>();
        lat->job = kf->job;
        const int n = run.plan().segments;
        auto cp = run.checkpoints();
        DevicePool::Lease lease(devices_, std::get<1>(in).index);
        c10::InferenceMode guard;
        auto ctx = make_ctx(lease.device(), run, "temporal");
        for (int s = 0; s < n; ++s) {
          ctx.throw_if_cancelled();
          show(run, "temporal", s, n);
          const auto name = segment_name(s);
          if (cp && cp->has_stage(name)) {
            SegmentLatents seg;
            seg.header = kf->job.header;
            seg.segment = s;
            auto m = *cp->load_stage(name);
            if (auto it = m.find("range"); it != m.end()) {
              seg.first_frame = it->second[0].item<int64_t>();
              seg.frames = it->second[1].item<int64_t>();
              m.erase(it);
            }
            unpack(std::move(m), seg.latents, seg.extra);
            lat->segments.push_back(std::move(seg));
            run.add_resumed(name);
            continue;
          }
          const SegmentLatents* prev = s > 0 ? &lat->segments.back() : nullptr;
          SegmentLatents seg = run.renderer().temporal(*kf, s, prev, ctx);
          seg.segment = s;
          if (cp) {
            auto m = pack(seg.latents, seg.extra);
            m["range"] = torch::tensor({seg.first_frame, seg.frames}, torch::kInt64);
            cp->save_stage(name, m);
          }
          lat->segments.push_back(std::move(seg));
        }
        show(run, "temporal", n, n);
        lat->keyframes = std::move(*kf);
        return std::shared_ptr<const ShotLatents>(std::move(lat));
      });
    }
    for (int b = 0; b < run.plan().batches(); ++b) {
      DecodeWork w;
      w.header = all->job.header;
      w.header.seq = run.first_batch_seq() + static_cast<uint64_t>(b);
      w.run = runp;
      w.latents = all;
      w.batch = b;
      std::get<0>(out).try_put(w);
    }
  });

  // --- decode chunks: in run order through the batch limiter
  flow::sequencer_node<DecodeWork> decode_order(g, [](const DecodeWork& w) { return w.header.seq; });
  flow::limiter_node<DecodeWork> batch_limit(g, static_cast<size_t>(options_.max_batches_in_flight));
  flow::function_node<DecodeWork, DecodeWork> batch_admit(g, flow::unlimited, [&](DecodeWork w) {
    bump_peak(stats_.batches_in_flight, stats_.peak_batches_in_flight);
    return w;
  });
  flow::queue_node<DecodeWork> decode_q(g);
  using DecIn = std::tuple<DecodeWork, DeviceToken>;
  flow::join_node<DecIn, flow::reserving> dec_join(g);
  flow::function_node<DecIn, BatchPtr> decode(g, flow::unlimited, [&](const DecIn& in) {
    TokenReturn back{tokens, std::get<1>(in)};
    const DecodeWork& w = std::get<0>(in);
    ShotRun& run = *w.run;
    return guarded(rs, run, "decode", [&] {
      DevicePool::Lease lease(devices_, std::get<1>(in).index);
      c10::InferenceMode guard;
      auto ctx = make_ctx(lease.device(), run, "decode");
      auto b = std::make_shared<FrameBatch>(run.renderer().decode(*w.latents, w.batch, ctx));
      b->header = w.header;
      b->run = w.run;
      b->batch = w.batch;
      b->batches = run.plan().batches();
      show(run, "decode", decoded.at(&run).fetch_add(1) + 1, b->batches);
      return b;
    });
  });

  // --- post (serial, in order)
  auto seq_of = [](const BatchPtr& b) { return b->header.seq; };
  flow::sequencer_node<BatchPtr> post_order(g, seq_of);
  flow::function_node<BatchPtr, BatchPtr> post(g, flow::serial, [&](BatchPtr b) {
    ShotRun& run = *b->run;
    return guarded(rs, run, "post", [&] {
      if (!run.post) run.post = outputs_.post(run);
      auto frames = run.post->push(std::move(b->frames));
      if (b->last()) {
        auto tail = run.post->flush();
        frames.insert(frames.end(), std::make_move_iterator(tail.begin()), std::make_move_iterator(tail.end()));
        run.post.reset();
      }
      b->frames = std::move(frames);
      return b;
    });
  });

  // --- encode (serial, in order)
  flow::sequencer_node<BatchPtr> encode_order(g, seq_of);
  using EncNode = flow::multifunction_node<BatchPtr, std::tuple<flow::continue_msg, EncodedClip>>;
  EncNode encode(g, flow::serial, [&](BatchPtr b, EncNode::output_ports_type& out) {
    ShotRun& run = *b->run;
    guarded(rs, run, "encode", [&] {
      if (!run.writer) run.writer = outputs_.encoder(run);
      for (auto& f : b->frames) run.writer->write(std::move(f));
      b->frames.clear();
      show(run, "encode", b->batch + 1, b->batches);
      if (b->last()) {
        run.writer->finish();
        const int64_t n = run.writer->frames_written();
        run.writer.reset();
        if (auto cp = run.checkpoints()) {
          cp->mark_output_complete(run.shot().output, n);
          cp->prune_stages();
        }
        EncodedClip clip{b->header, b->run, run.shot().output, n, run.shot().duration};
        std::get<1>(out).try_put(clip);
      }
    });
    stats_.batches_encoded.fetch_add(1);
    stats_.batches_in_flight.fetch_sub(1);
    std::get<0>(out).try_put(flow::continue_msg());
  });

  flow::function_node<EncodedClip, flow::continue_msg> done(g, flow::serial, [&](const EncodedClip& clip) {
    clip.run->set_status(ShotStatus::Done);
    if (progress_) progress_->shot_finished(clip.run->id(), "done", clip.output.string());
    stats_.shots_in_flight.fetch_sub(1);
    return flow::continue_msg();
  });

  // --- edges
  flow::make_edge(source, shot_limit);
  flow::make_edge(shot_limit, admit);
  flow::make_edge(admit, admitted);
  flow::make_edge(admitted, flow::input_port<0>(text_join));
  flow::make_edge(tokens, flow::input_port<1>(text_join));
  flow::make_edge(text_join, text);
  flow::make_edge(text, cond_q);
  flow::make_edge(cond_q, flow::input_port<0>(kf_join));
  flow::make_edge(tokens, flow::input_port<1>(kf_join));
  flow::make_edge(kf_join, keyframes);
  flow::make_edge(keyframes, kf_q);
  flow::make_edge(kf_q, flow::input_port<0>(tmp_join));
  flow::make_edge(tokens, flow::input_port<1>(tmp_join));
  flow::make_edge(tmp_join, temporal);
  flow::make_edge(flow::output_port<0>(temporal), decode_order);
  flow::make_edge(decode_order, batch_limit);
  flow::make_edge(batch_limit, batch_admit);
  flow::make_edge(batch_admit, decode_q);
  flow::make_edge(decode_q, flow::input_port<0>(dec_join));
  flow::make_edge(tokens, flow::input_port<1>(dec_join));
  flow::make_edge(dec_join, decode);
  flow::make_edge(decode, post_order);
  flow::make_edge(post_order, post);
  flow::make_edge(post, encode_order);
  flow::make_edge(encode_order, encode);
  flow::make_edge(flow::output_port<0>(encode), batch_limit.decrementer());
  flow::make_edge(flow::output_port<1>(encode), done);
  flow::make_edge(done, shot_limit.decrementer());

  // --- go
  for (const auto& s : shots) {
    ShotJob job;
    job.header = MessageHeader{s->id(), s->index(), static_cast<uint64_t>(s->index())};
    job.run = s;
    source.try_put(job);
  }
  for (const auto& d : devices_.devices()) tokens.try_put(DeviceToken{d.index});

  // Cancel watcher: a signal handler may only set a flag; this thread turns it into graph.cancel().
  std::atomic<bool> finished{false};
  std::atomic<bool> cancelled_by_request{false};
  std::thread watcher([&] {
    while (!finished.load()) {
      if (received_signal() != 0 || (cancel && cancel->cancelled())) {
        cancelled_by_request = true;
        rs.stop = true;
        g.cancel();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  struct JoinWatcher {
    std::atomic<bool>& finished;
    std::thread& t;
    ~JoinWatcher() {
      finished = true;
      t.join();
    }
  } join_watcher{finished, watcher};

  auto mark_unfinished = [&] {
    for (const auto& s : shots) {
      const auto st = s->status();
      if (st == ShotStatus::Rendering) s->set_status(ShotStatus::Cancelled);
      if (st == ShotStatus::Rendering || st == ShotStatus::Cancelled || st == ShotStatus::Failed)
        if (progress_) progress_->shot_finished(s->id(), to_string(s->status()));
      s->post.reset();
      s->writer.reset();  // removes a temporary output
    }
  };
  try {
    g.wait_for_all();
  } catch (...) {
    mark_unfinished();
    if (rs.first_error) std::rethrow_exception(rs.first_error);
    throw;
  }
  if (cancelled_by_request.load() || g.is_cancelled()) {
    mark_unfinished();
    throw CancelledError();
  }
  for (const auto& s : shots)
    if (s->status() != ShotStatus::Done)
      throw Error(fmt::format("shot '{}': the render graph finished without completing the shot (internal error)", s->id()));
}

}  // namespace clipgen::pipeline
