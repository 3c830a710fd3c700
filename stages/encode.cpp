#include "stages/encode.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

#include "core/error.h"
#include "core/fs.h"
#include "stages/audio.h"
#include "stages/libav.h"

namespace clipgen::stages {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string strip_spaces(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c != ' ' && c != '_' && c != '-') out += c;
  return out;
}

// Sets a codec option: the encoder's private options first (x264 "preset", "crf", ...), then the
// generic AVCodecContext ones ("threads", "g", ...). Unknown keys are errors naming the key.
void set_codec_option(AVCodecContext* ctx, const std::string& key, const std::string& value) {
  int ret = AVERROR_OPTION_NOT_FOUND;
  if (ctx->priv_data) ret = av_opt_set(ctx->priv_data, key.c_str(), value.c_str(), 0);
  if (ret == AVERROR_OPTION_NOT_FOUND) ret = av_opt_set(ctx, key.c_str(), value.c_str(), 0);
  if (ret == AVERROR_OPTION_NOT_FOUND)
    throw EncodeError(std::string("encoder ") + ctx->codec->name + " has no option '" + key + "'");
  av::check(ret, std::string("encoder ") + ctx->codec->name + ": setting " + key + "=" + value);
}

// The profile by name: the encoder's own "profile" option when it has one (libx264, libx265,
// prores_ks), else one of the codec's listed profiles ("Profile 0", "Main", ...) or a number.
void set_profile(AVCodecContext* ctx, const AVCodec* codec, const std::string& profile) {
  if (profile.empty()) return;
  if (ctx->priv_data && av_opt_find(ctx->priv_data, "profile", nullptr, 0, 0)) {
    set_codec_option(ctx, "profile", profile);
    return;
  }
  std::string want = lower(strip_spaces(profile));
  // Wrappers such as libsvtav1 list no profiles of their own; the codec descriptor has them.
  const AVProfile* profiles = codec->profiles;
  if (!profiles) {
    const AVCodecDescriptor* desc = avcodec_descriptor_get(codec->id);
    if (desc) profiles = desc->profiles;
  }
  if (profiles) {
    for (const AVProfile* p = profiles; p->profile != FF_PROFILE_UNKNOWN; ++p) {
      std::string name = lower(strip_spaces(p->name));
      if (name == want || name == "profile" + want) {
        ctx->profile = p->profile;
        return;
      }
    }
  }
  try {
    size_t used = 0;
    int n = std::stoi(profile, &used);
    if (used == profile.size()) {
      ctx->profile = n;
      return;
    }
  } catch (const std::exception&) {
  }
  throw EncodeError(std::string("encoder ") + codec->name + " has no profile '" + profile + "'");
}

bool supports_pix_fmt(const AVCodec* codec, AVPixelFormat fmt) {
  if (!codec->pix_fmts) return true;
  for (const AVPixelFormat* p = codec->pix_fmts; *p != AV_PIX_FMT_NONE; ++p)
    if (*p == fmt) return true;
  return false;
}

// Applies preset.video to a video codec context (before avcodec_open2). Returns nothing; throws
// EncodeError naming the setting it could not apply.
void configure_video(AVCodecContext* ctx, const AVCodec* codec, const configs::Preset& preset) {
  const auto& v = preset.video;
  const std::string name = codec->name;
  ctx->width = preset.width;
  ctx->height = preset.height;
  ctx->time_base = AVRational{preset.fps.den, preset.fps.num};  // one tick per frame: pts = frame index
  ctx->framerate = AVRational{preset.fps.num, preset.fps.den};
  ctx->sample_aspect_ratio = AVRational{1, 1};
  ctx->pix_fmt = av::pixel_format(v.pix_fmt, "preset " + preset.name + " video.pix_fmt");
  if (!supports_pix_fmt(codec, ctx->pix_fmt))
    throw EncodeError("encoder " + name + " cannot encode pixel format " + v.pix_fmt + " (preset " + preset.name + ")");
  if (v.color != "bt709")
    throw EncodeError("preset " + preset.name + ": video.color '" + v.color + "' is not supported (only bt709)");
  ctx->color_primaries = AVCOL_PRI_BT709;
  ctx->color_trc = AVCOL_TRC_BT709;
  ctx->colorspace = AVCOL_SPC_BT709;
  if (v.range == "tv")
    ctx->color_range = AVCOL_RANGE_MPEG;
  else if (v.range == "pc")
    ctx->color_range = AVCOL_RANGE_JPEG;
  else
    throw EncodeError("preset " + preset.name + ": video.range must be tv or pc, got '" + v.range + "'");
  ctx->thread_count = 0;  // the codec's own threads: one per core

  const bool intra_only = name == "prores_ks";
  if (!intra_only) {
    ctx->gop_size = v.gop;
    ctx->keyint_min = v.gop;
    ctx->max_b_frames = v.b_frames;
    if (v.closed_gop) ctx->flags |= AV_CODEC_FLAG_CLOSED_GOP;
  }
  if (v.rate_control == "bitrate") {
    if (v.bitrate <= 0) throw EncodeError("preset " + preset.name + ": video.bitrate must be > 0 with rate_control bitrate");
    ctx->bit_rate = v.bitrate;
  } else if (v.rate_control != "crf") {
    throw EncodeError("preset " + preset.name + ": video.rate_control must be crf or bitrate, got '" + v.rate_control + "'");
  }
  if (v.maxrate > 0) ctx->rc_max_rate = v.maxrate;
  if (v.bufsize > 0) ctx->rc_buffer_size = static_cast<int>(v.bufsize);
  const bool crf = v.rate_control == "crf";

  auto extra = v.options;  // private options from the preset; some are merged below
  if (name == "libx264") {
    set_codec_option(ctx, "preset", v.encoder_preset);
    set_profile(ctx, codec, v.profile);
    if (crf) set_codec_option(ctx, "crf", std::to_string(v.crf));
  } else if (name == "libx265") {
    set_codec_option(ctx, "preset", v.encoder_preset);
    set_profile(ctx, codec, v.profile);
    if (crf) set_codec_option(ctx, "crf", std::to_string(v.crf));
    // GOP structure spelled out for x265 (its wrapper does not map every AVCodecContext field).
    std::string params = "keyint=" + std::to_string(v.gop) + ":min-keyint=" + std::to_string(v.gop) +
                         ":bframes=" + std::to_string(v.b_frames) + ":open-gop=" + (v.closed_gop ? "0" : "1") +
                         ":log-level=error";
    if (auto it = extra.find("x265-params"); it != extra.end()) {
      params += ":" + it->second;
      extra.erase(it);
    }
    set_codec_option(ctx, "x265-params", params);
  } else if (name == "prores_ks") {
    set_profile(ctx, codec, v.profile);
    set_codec_option(ctx, "vendor", "apl0");
    ctx->bits_per_raw_sample = av_pix_fmt_desc_get(ctx->pix_fmt)->comp[0].depth;
  } else if (name == "libvpx-vp9") {
    set_profile(ctx, codec, v.profile);
    if (crf) {
      set_codec_option(ctx, "crf", std::to_string(v.crf));
      ctx->bit_rate = 0;  // constant quality
    }
    const std::string dl = v.encoder_preset;
    if (dl == "good" || dl == "best" || dl == "realtime") set_codec_option(ctx, "deadline", dl);
    set_codec_option(ctx, "row-mt", "1");
  } else if (name == "libsvtav1") {
    set_profile(ctx, codec, v.profile);
    set_codec_option(ctx, "preset", v.encoder_preset);
    if (crf) set_codec_option(ctx, "crf", std::to_string(v.crf));
  } else {
    throw EncodeError("preset " + preset.name + ": video codec '" + name +
                      "' is not supported (libx264, libx265, prores_ks, libvpx-vp9, libsvtav1)");
  }
  for (const auto& [key, value] : extra) set_codec_option(ctx, key, value);
}

AVSampleFormat pick_sample_format(const AVCodec* codec) {
  if (!codec->sample_fmts) return AV_SAMPLE_FMT_FLTP;
  // Prefer float (no quantisation before the encoder), else the codec's first format.
  for (const AVSampleFormat* f = codec->sample_fmts; *f != AV_SAMPLE_FMT_NONE; ++f)
    if (*f == AV_SAMPLE_FMT_FLTP || *f == AV_SAMPLE_FMT_FLT) return *f;
  return codec->sample_fmts[0];
}

}  // namespace

std::string muxer_name(const std::string& container) {
  if (container == "mp4") return "mp4";
  if (container == "mov") return "mov";
  if (container == "mkv") return "matroska";
  if (container == "webm") return "webm";
  throw EncodeError("container '" + container + "' is not supported (mp4, mov, mkv, webm)");
}

// One encoder feeding one output stream.
struct Track {
  av::CodecContextPtr ctx;
  AVStream* stream = nullptr;
  int64_t next_pts = 0;
};

struct Encoder::Impl {
  configs::Preset preset;
  std::filesystem::path output, temp;
  EncoderOptions options;
  av::OutputFormatPtr fmt;
  Track video, audio;
  bool has_audio = false;
  std::unique_ptr<AudioBedReader> bed;
  int audio_block = 1024;  // samples per audio frame
  av::SwsPtr sws;
  av::PacketPtr packet;
  int64_t frames_in = 0;
  bool finished = false;

  // Encoder thread and its queue (converted frames; a null entry ends the stream).
  std::thread worker;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<av::FramePtr> queue;
  bool stop = false;      // abandon: the destructor without finish()
  bool failed = false;
  std::exception_ptr error;

  // The one send/receive loop, for video and audio alike: feed `frame` (null = flush) to the track's
  // encoder and mux every packet it returns.
  void encode(Track& t, const AVFrame* frame) {
    av::check(avcodec_send_frame(t.ctx.get(), frame), std::string("sending a frame to ") + t.ctx->codec->name);
    for (;;) {
      int ret = avcodec_receive_packet(t.ctx.get(), packet.get());
      if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
      av::check(ret, std::string("encoding with ") + t.ctx->codec->name);
      if (t.ctx->codec_type == AVMEDIA_TYPE_VIDEO && packet->duration == 0) packet->duration = 1;  // CFR: 1 tick
      av_packet_rescale_ts(packet.get(), t.ctx->time_base, t.stream->time_base);
      packet->stream_index = t.stream->index;
      av::check(av_interleaved_write_frame(fmt.get(), packet.get()), "writing a packet to " + temp.string());
    }
  }

  int64_t audio_samples_at(int64_t video_frames) const {
    // Samples that cover `video_frames` frames: round(frames * rate * den / num).
    return av_rescale_rnd(video_frames, static_cast<int64_t>(audio.ctx->sample_rate) * preset.fps.den,
                          preset.fps.num, AV_ROUND_NEAR_INF);
  }

  // Encodes audio up to the end of video frame `video_frames` (whole blocks only unless `final`).
  void catch_up_audio(int64_t video_frames, bool final) {
    if (!has_audio) return;
    const int64_t target = audio_samples_at(video_frames);
    while (audio.next_pts < target) {
      int64_t n = std::min<int64_t>(audio_block, target - audio.next_pts);
      if (n < audio_block && !final) break;
      auto f = bed->read(static_cast<int>(n));
      f->pts = audio.next_pts;
      audio.next_pts += n;
      encode(audio, f.get());
    }
  }

  void encode_video(AVFrame* f) {
    encode(video, f);
    ++video.next_pts;
    catch_up_audio(video.next_pts, false);
  }

  void finish_streams() {
    encode(video, nullptr);
    if (has_audio) {
      catch_up_audio(video.next_pts, true);
      encode(audio, nullptr);
    }
    av::check(av_write_trailer(fmt.get()), "writing the trailer of " + temp.string());
  }

  void run_worker() {
    try {
      for (;;) {
        av::FramePtr f;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return stop || !queue.empty(); });
          if (stop) return;
          f = std::move(queue.front());
          queue.pop_front();
        }
        cv.notify_all();
        if (!f) {
          finish_streams();
          return;
        }
        encode_video(f.get());
      }
    } catch (Error& e) {
      e.add_context("encoding " + output.string());  // once, here: callers rethrow it as is
      record_failure();
    } catch (...) {
      record_failure();
    }
  }

  void record_failure() {
    std::lock_guard lock(mu);
    failed = true;
    error = std::current_exception();
    cv.notify_all();
  }

  void rethrow_worker_error() {
    std::lock_guard lock(mu);
    if (failed) std::rethrow_exception(error);
  }

  // False when the encoder thread has failed (its error is then rethrown by rethrow_worker_error()).
  bool enqueue(av::FramePtr f) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return failed || static_cast<int>(queue.size()) < options.queue_depth; });
      if (failed) return false;
      queue.push_back(std::move(f));
    }
    cv.notify_all();
    return true;
  }

  void stop_worker() {
    if (!worker.joinable()) return;
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    worker.join();
  }

  void open_video() {
    const AVCodec* codec = avcodec_find_encoder_by_name(preset.video.codec.c_str());
    if (!codec) throw EncodeError("preset " + preset.name + ": video encoder '" + preset.video.codec + "' is not available in this libavcodec");
    video.ctx.reset(avcodec_alloc_context3(codec));
    if (!video.ctx) throw EncodeError("avcodec_alloc_context3: out of memory");
    configure_video(video.ctx.get(), codec, preset);
    if (fmt->oformat->flags & AVFMT_GLOBALHEADER) video.ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av::check(avcodec_open2(video.ctx.get(), codec, nullptr),
              "opening encoder " + preset.video.codec + " for preset " + preset.name);
    video.stream = avformat_new_stream(fmt.get(), nullptr);
    if (!video.stream) throw EncodeError("avformat_new_stream: out of memory");
    av::check(avcodec_parameters_from_context(video.stream->codecpar, video.ctx.get()), "copying video parameters");
    // HEVC in mp4/mov as 'hvc1' (parameter sets in the sample description), which Apple players require.
    if (preset.video.codec == "libx265" && (preset.container == "mp4" || preset.container == "mov"))
      video.stream->codecpar->codec_tag = MKTAG('h', 'v', 'c', '1');
    video.stream->time_base = video.ctx->time_base;
    video.stream->avg_frame_rate = video.ctx->framerate;
    video.stream->r_frame_rate = video.ctx->framerate;

    sws.reset(sws_getContext(preset.width, preset.height, AV_PIX_FMT_RGB24, preset.width, preset.height,
                             video.ctx->pix_fmt, SWS_BICUBIC | SWS_ACCURATE_RND, nullptr, nullptr, nullptr));
    if (!sws) throw EncodeError("sws_getContext: cannot convert rgb24 to " + preset.video.pix_fmt);
    // RGB input is full range; the output uses the BT.709 matrix in the preset's range.
    const int* bt709 = sws_getCoefficients(SWS_CS_ITU709);
    const int dst_full = video.ctx->color_range == AVCOL_RANGE_JPEG ? 1 : 0;
    if (sws_setColorspaceDetails(sws.get(), bt709, 1, bt709, dst_full, 0, 1 << 16, 1 << 16) < 0)
      throw EncodeError("sws_setColorspaceDetails: BT.709 conversion to " + preset.video.pix_fmt + " not supported");
  }

  void open_audio(const std::filesystem::path& bed_file) {
    const auto& a = preset.audio;
    const AVCodec* codec = avcodec_find_encoder_by_name(a.codec.c_str());
    if (!codec) throw EncodeError("preset " + preset.name + ": audio encoder '" + a.codec + "' is not available in this libavcodec");
    audio.ctx.reset(avcodec_alloc_context3(codec));
    if (!audio.ctx) throw EncodeError("avcodec_alloc_context3: out of memory");
    auto* c = audio.ctx.get();
    c->sample_fmt = pick_sample_format(codec);
    c->sample_rate = a.sample_rate;
    av_channel_layout_default(&c->ch_layout, a.channels);
    c->time_base = AVRational{1, a.sample_rate};
    if (a.bitrate > 0 && !(codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) && a.codec.rfind("pcm_", 0) != 0)
      c->bit_rate = a.bitrate;
    if (fmt->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av::check(avcodec_open2(c, codec, nullptr), "opening audio encoder " + a.codec + " for preset " + preset.name);
    audio_block = c->frame_size > 0 ? c->frame_size : 1024;
    audio.stream = avformat_new_stream(fmt.get(), nullptr);
    if (!audio.stream) throw EncodeError("avformat_new_stream: out of memory");
    av::check(avcodec_parameters_from_context(audio.stream->codecpar, c), "copying audio parameters");
    audio.stream->time_base = c->time_base;
    bed = std::make_unique<AudioBedReader>(bed_file, c->sample_fmt, c->ch_layout, c->sample_rate);
    has_audio = true;
  }

  void open(const EncodeMetadata& meta, const std::optional<std::filesystem::path>& bed_file) {
    const std::string muxer = muxer_name(preset.container);
    const AVOutputFormat* ofmt = av_guess_format(muxer.c_str(), nullptr, nullptr);
    if (!ofmt) throw EncodeError("muxer '" + muxer + "' is not available in this libavformat");
    AVFormatContext* raw = nullptr;
    av::check(avformat_alloc_output_context2(&raw, ofmt, nullptr, temp.c_str()), "creating a " + muxer + " muxer");
    fmt.reset(raw);

    open_video();
    if (bed_file && preset.audio.enabled) open_audio(*bed_file);

    av_dict_set(&fmt->metadata, "clipgen_version", meta.clipgen_version.c_str(), 0);
    av_dict_set(&fmt->metadata, "clipgen_shot_id", meta.shot_id.c_str(), 0);
    av_dict_set(&fmt->metadata, "clipgen_seed", std::to_string(meta.seed).c_str(), 0);
    if (!meta.shot_json.empty()) av_dict_set(&fmt->metadata, "clipgen_shot", meta.shot_json.c_str(), 0);
    const std::string comment = "clipgen " + meta.clipgen_version + ", shot " + meta.shot_id + ", seed " +
                                std::to_string(meta.seed) + ", preset " + preset.name;
    av_dict_set(&fmt->metadata, "comment", comment.c_str(), 0);

    std::filesystem::create_directories(output.parent_path().empty() ? "." : output.parent_path());
    av::check(avio_open(&fmt->pb, temp.c_str(), AVIO_FLAG_WRITE), "opening " + temp.string() + " for writing");

    AVDictionary* raw_opts = nullptr;
    if (preset.container == "mp4" || preset.container == "mov") {
      // use_metadata_tags: keep our own keys (clipgen_*) as mdta tags instead of dropping them.
      std::string flags = "+use_metadata_tags";
      if (preset.faststart) flags += "+faststart";
      av_dict_set(&raw_opts, "movflags", flags.c_str(), 0);
    }
    std::unique_ptr<AVDictionary, av::DictionaryDeleter> opts(raw_opts);
    raw_opts = opts.release();
    int ret = avformat_write_header(fmt.get(), &raw_opts);
    opts.reset(raw_opts);
    av::check(ret, "writing the " + muxer + " header of " + temp.string());
    packet = av::make_packet();
  }

  av::FramePtr convert(const Frame& frame) {
    if (frame.width != preset.width || frame.height != preset.height)
      throw EncodeError("frame " + std::to_string(frames_in) + " is " + std::to_string(frame.width) + "x" +
                        std::to_string(frame.height) + " but preset " + preset.name + " is " +
                        std::to_string(preset.width) + "x" + std::to_string(preset.height) +
                        " (the post stage fits frames to the preset raster)");
    if (frame.rgb.size() != static_cast<size_t>(frame.width) * frame.height * 3)
      throw EncodeError("frame " + std::to_string(frames_in) + ": pixel buffer has the wrong size");
    auto f = av::make_video_frame(video.ctx->pix_fmt, preset.width, preset.height);
    const uint8_t* src[1] = {frame.rgb.data()};
    const int stride[1] = {frame.width * 3};
    sws_scale(sws.get(), src, stride, 0, frame.height, f->data, f->linesize);
    f->pts = frames_in;
    f->color_primaries = video.ctx->color_primaries;
    f->color_trc = video.ctx->color_trc;
    f->colorspace = video.ctx->colorspace;
    f->color_range = video.ctx->color_range;
    f->sample_aspect_ratio = AVRational{1, 1};
    return f;
  }

  ~Impl() { stop_worker(); }

  void remove_temp() {
    stop_worker();
    fmt.reset();  // closes the file
    std::error_code ec;
    std::filesystem::remove(temp, ec);
  }
};

Encoder::Encoder(const configs::Preset& preset, std::filesystem::path output, EncodeMetadata metadata,
                 std::optional<std::filesystem::path> audio_bed, EncoderOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->preset = preset;
  impl_->output = std::move(output);
  impl_->temp = temp_path_for(impl_->output);
  impl_->options = options;
  try {
    impl_->open(metadata, audio_bed);
  } catch (Error& e) {
    impl_->remove_temp();
    e.add_context("encoding " + impl_->output.string());
    throw;
  } catch (...) {
    impl_->remove_temp();
    throw;
  }
  if (options.queue_depth > 0) impl_->worker = std::thread([this] { impl_->run_worker(); });
}

Encoder::~Encoder() {
  if (impl_ && !impl_->finished) impl_->remove_temp();
}

void Encoder::write(const Frame& frame) {
  auto& d = *impl_;
  if (d.finished) throw EncodeError("write() after finish() on " + d.output.string());
  bool worker_failed = false;
  try {
    auto f = d.convert(frame);
    ++d.frames_in;
    if (d.options.queue_depth > 0)
      worker_failed = !d.enqueue(std::move(f));
    else
      d.encode_video(f.get());
  } catch (Error& e) {
    e.add_context("encoding " + d.output.string());
    throw;
  }
  if (worker_failed) d.rethrow_worker_error();
}

std::filesystem::path Encoder::finish() {
  auto& d = *impl_;
  if (d.finished) return d.output;
  if (d.options.queue_depth > 0 && d.frames_in > 0) {
    d.enqueue(nullptr);
    d.worker.join();
    d.rethrow_worker_error();  // carries its context already
  }
  try {
    if (d.frames_in == 0) throw EncodeError("no frames were written");
    if (d.options.queue_depth == 0) d.finish_streams();
    av::check(avio_closep(&d.fmt->pb), "closing " + d.temp.string());
    d.fmt.reset();
    commit_temp(d.temp, d.output);
    d.finished = true;
  } catch (Error& e) {
    e.add_context("encoding " + d.output.string());
    throw;
  }
  return d.output;
}

int64_t Encoder::frames_written() const { return impl_->frames_in; }
const std::filesystem::path& Encoder::output() const { return impl_->output; }
const std::filesystem::path& Encoder::temp_path() const { return impl_->temp; }

}  // namespace clipgen::stages
