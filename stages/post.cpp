#include "stages/post.h"

#include <cstring>
#include <deque>

extern "C" {
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/imgutils.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>
}

#include "core/error.h"
#include "stages/libav.h"

namespace clipgen::stages {
namespace {

std::string rat(configs::Rational r) { return std::to_string(r.num) + "/" + std::to_string(r.den); }

std::string fit_chain(const std::string& fit, int w, int h) {
  const std::string W = std::to_string(w), H = std::to_string(h);
  if (fit == "crop")
    return "scale=" + W + ":" + H + ":force_original_aspect_ratio=increase:flags=lanczos,crop=" + W + ":" + H;
  if (fit == "letterbox")
    return "scale=" + W + ":" + H + ":force_original_aspect_ratio=decrease:flags=lanczos,pad=" + W + ":" + H +
           ":(ow-iw)/2:(oh-ih)/2:color=black";
  if (fit == "stretch") return "scale=" + W + ":" + H + ":flags=lanczos";
  throw EncodeError("post.fit must be crop, letterbox or stretch, got '" + fit + "'");
}

std::string retime_chain(const std::string& retime, configs::Rational dst) {
  // blend/mci filters only take YUV: go through full-range BT.709 4:4:4 and back.
  const std::string to_yuv = "scale=out_color_matrix=bt709:out_range=full:flags=accurate_rnd,format=yuv444p,";
  const std::string to_rgb = ",scale=in_color_matrix=bt709:in_range=full:flags=accurate_rnd,format=rgb24";
  if (retime == "dup") return "fps=fps=" + rat(dst);
  if (retime == "blend") return to_yuv + "framerate=fps=" + rat(dst) + to_rgb;
  if (retime == "mci")
    return to_yuv + "minterpolate=fps=" + rat(dst) + ":mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1" + to_rgb;
  throw EncodeError("post.retime must be dup, blend or mci, got '" + retime + "'");
}

}  // namespace

int64_t retimed_frame_count(int64_t n, configs::Rational src, configs::Rational dst) {
  return av_rescale_rnd(n, static_cast<int64_t>(dst.num) * src.den, static_cast<int64_t>(dst.den) * src.num,
                        AV_ROUND_NEAR_INF);
}

struct PostProcessor::Impl {
  int src_w, src_h, dst_w, dst_h;
  configs::Rational src_fps, dst_fps;
  std::string description;
  av::FilterGraphPtr graph;
  AVFilterContext* src = nullptr;
  AVFilterContext* sink = nullptr;
  av::FramePtr out;
  std::deque<Frame> produced;  // out of the graph, not yet returned
  av::FramePtr last_in;        // the last input frame (repeated past the end at flush, see below)
  int lookahead = 0;           // input frames the retime filter needs after the one it interpolates from
  int64_t n_in = 0, n_out = 0, adjust = 0;
  bool flushed = false;

  void build() {
    graph.reset(avfilter_graph_alloc());
    if (!graph) throw EncodeError("avfilter_graph_alloc: out of memory");
    const std::string args = "video_size=" + std::to_string(src_w) + "x" + std::to_string(src_h) +
                             ":pix_fmt=rgb24:time_base=" + std::to_string(src_fps.den) + "/" +
                             std::to_string(src_fps.num) + ":pixel_aspect=1/1:frame_rate=" + rat(src_fps);
    av::check(avfilter_graph_create_filter(&src, avfilter_get_by_name("buffer"), "in", args.c_str(), nullptr,
                                           graph.get()),
              "post: creating the buffer source (" + args + ")");
    av::check(avfilter_graph_create_filter(&sink, avfilter_get_by_name("buffersink"), "out", nullptr, nullptr,
                                           graph.get()),
              "post: creating the buffer sink");
    const AVPixelFormat fmts[] = {AV_PIX_FMT_RGB24, AV_PIX_FMT_NONE};
    av::check(av_opt_set_int_list(sink, "pix_fmts", fmts, AV_PIX_FMT_NONE, AV_OPT_SEARCH_CHILDREN),
              "post: restricting the sink to rgb24");

    AVFilterInOut* outputs = avfilter_inout_alloc();
    AVFilterInOut* inputs = avfilter_inout_alloc();
    if (!outputs || !inputs) {
      avfilter_inout_free(&outputs);
      avfilter_inout_free(&inputs);
      throw EncodeError("avfilter_inout_alloc: out of memory");
    }
    outputs->name = av_strdup("in");
    outputs->filter_ctx = src;
    inputs->name = av_strdup("out");
    inputs->filter_ctx = sink;
    int ret = avfilter_graph_parse_ptr(graph.get(), description.c_str(), &inputs, &outputs, nullptr);
    avfilter_inout_free(&outputs);
    avfilter_inout_free(&inputs);
    av::check(ret, "post: parsing the filter graph '" + description + "'");
    av::check(avfilter_graph_config(graph.get(), nullptr), "post: configuring the filter graph '" + description + "'");
  }

  void drain() {
    for (;;) {
      int ret = av_buffersink_get_frame(sink, out.get());
      if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
      av::check(ret, "post: reading from the filter graph");
      Frame f(out->width, out->height);
      for (int y = 0; y < out->height; ++y)
        std::memcpy(f.rgb.data() + static_cast<size_t>(y) * out->width * 3, out->data[0] + y * out->linesize[0],
                    static_cast<size_t>(out->width) * 3);
      av_frame_unref(out.get());
      produced.push_back(std::move(f));
    }
  }

  void release(std::vector<Frame>& into, size_t keep) {
    while (produced.size() > keep) {
      into.push_back(std::move(produced.front()));
      produced.pop_front();
      ++n_out;
    }
  }
};

PostProcessor::PostProcessor(int src_width, int src_height, configs::Rational src_fps, const configs::Preset& preset,
                             const configs::Post& post)
    : impl_(std::make_unique<Impl>()) {
  auto& d = *impl_;
  if (src_width <= 0 || src_height <= 0 || src_fps.num <= 0 || src_fps.den <= 0 || preset.fps.num <= 0 ||
      preset.fps.den <= 0)
    throw EncodeError("post: invalid source raster/fps or preset fps");
  d.src_w = src_width;
  d.src_h = src_height;
  d.dst_w = preset.width;
  d.dst_h = preset.height;
  d.src_fps = src_fps;
  d.dst_fps = preset.fps;
  const bool same_raster = d.src_w == d.dst_w && d.src_h == d.dst_h;
  const bool same_rate = static_cast<int64_t>(src_fps.num) * preset.fps.den == static_cast<int64_t>(preset.fps.num) * src_fps.den;
  std::string fit = same_raster ? "" : fit_chain(post.fit, d.dst_w, d.dst_h);
  if (same_raster && post.fit != "crop" && post.fit != "letterbox" && post.fit != "stretch") fit_chain(post.fit, 1, 1);
  std::string retime = same_rate ? "" : retime_chain(post.retime, preset.fps);
  if (!same_rate) d.lookahead = post.retime == "mci" ? 4 : post.retime == "blend" ? 2 : 0;
  if (same_rate && post.retime != "dup" && post.retime != "blend" && post.retime != "mci") retime_chain(post.retime, preset.fps);
  // Retime at the smaller raster.
  const bool retime_first = static_cast<int64_t>(d.src_w) * d.src_h <= static_cast<int64_t>(d.dst_w) * d.dst_h;
  std::vector<std::string> parts;
  if (retime_first) {
    if (!retime.empty()) parts.push_back(retime);
    if (!fit.empty()) parts.push_back(fit);
  } else {
    if (!fit.empty()) parts.push_back(fit);
    if (!retime.empty()) parts.push_back(retime);
  }
  parts.push_back("setsar=1");
  for (size_t i = 0; i < parts.size(); ++i) d.description += (i ? "," : "") + parts[i];
  d.out = av::make_frame();
  d.build();
}

PostProcessor::~PostProcessor() = default;

std::vector<Frame> PostProcessor::push(const Frame& frame) {
  auto& d = *impl_;
  if (d.flushed) throw EncodeError("post: push() after flush()");
  if (frame.width != d.src_w || frame.height != d.src_h)
    throw EncodeError("post: frame " + std::to_string(d.n_in) + " is " + std::to_string(frame.width) + "x" +
                      std::to_string(frame.height) + ", expected " + std::to_string(d.src_w) + "x" +
                      std::to_string(d.src_h));
  auto f = av::make_video_frame(AV_PIX_FMT_RGB24, d.src_w, d.src_h);
  for (int y = 0; y < d.src_h; ++y)
    std::memcpy(f->data[0] + y * f->linesize[0], frame.rgb.data() + static_cast<size_t>(y) * d.src_w * 3,
                static_cast<size_t>(d.src_w) * 3);
  f->pts = d.n_in++;
  f->sample_aspect_ratio = AVRational{1, 1};
  f->color_range = AVCOL_RANGE_JPEG;
  av::check(av_buffersrc_add_frame_flags(d.src, f.get(), AV_BUFFERSRC_FLAG_KEEP_REF), "post: feeding the filter graph");
  d.last_in = std::move(f);
  d.drain();
  std::vector<Frame> result;
  d.release(result, 1);  // hold back the newest frame: it may lie past the end (see header)
  return result;
}

std::vector<Frame> PostProcessor::flush() {
  auto& d = *impl_;
  std::vector<Frame> result;
  if (d.flushed) return result;
  d.flushed = true;
  // framerate and minterpolate need input after the frame they interpolate from, and drop the tail
  // of the stream without it: the last input frame is repeated past the end (output there is the
  // held last frame, as it would be anyway) and everything past round(N * dst / src) is cut below.
  int64_t end_pts = d.n_in;
  for (int k = 0; k < d.lookahead && d.last_in; ++k) {
    av::FramePtr again(av_frame_clone(d.last_in.get()));
    if (!again) throw EncodeError("av_frame_clone: out of memory");
    again->pts = end_pts++;
    av::check(av_buffersrc_add_frame_flags(d.src, again.get(), 0), "post: feeding the filter graph");
  }
  // The stream ends where the next frame would start.
  av::check(av_buffersrc_close(d.src, end_pts, AV_BUFFERSRC_FLAG_PUSH), "post: closing the filter graph input");
  d.drain();
  const int64_t target = retimed_frame_count(d.n_in, d.src_fps, d.dst_fps);
  const int64_t available = d.n_out + static_cast<int64_t>(d.produced.size());
  d.adjust = target - available;
  while (d.n_out < target && !d.produced.empty()) {
    result.push_back(std::move(d.produced.front()));
    d.produced.pop_front();
    ++d.n_out;
  }
  d.produced.clear();
  // Short: repeat the last frame (with the one-frame hold-back, the last frame is always in `result`
  // when the graph produced anything at all).
  while (d.n_out < target && !result.empty()) {
    Frame copy = result.back();
    result.push_back(std::move(copy));
    ++d.n_out;
  }
  return result;
}

int64_t PostProcessor::frames_in() const { return impl_->n_in; }
int64_t PostProcessor::frames_out() const { return impl_->n_out; }
int64_t PostProcessor::adjustment() const { return impl_->adjust; }
const std::string& PostProcessor::filter_description() const { return impl_->description; }

}  // namespace clipgen::stages
