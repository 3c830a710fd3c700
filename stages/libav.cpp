#include "stages/libav.h"

extern "C" {
#include <libavfilter/avfilter.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/pixdesc.h>
}

#include "core/error.h"

namespace clipgen::stages::av {

void OutputFormatDeleter::operator()(AVFormatContext* ctx) const {
  if (!ctx) return;
  if (ctx->oformat && !(ctx->oformat->flags & AVFMT_NOFILE) && ctx->pb) avio_closep(&ctx->pb);
  avformat_free_context(ctx);
}
void InputFormatDeleter::operator()(AVFormatContext* ctx) const {
  if (ctx) avformat_close_input(&ctx);
}
void CodecContextDeleter::operator()(AVCodecContext* ctx) const {
  if (ctx) avcodec_free_context(&ctx);
}
void FrameDeleter::operator()(AVFrame* f) const {
  if (f) av_frame_free(&f);
}
void PacketDeleter::operator()(AVPacket* p) const {
  if (p) av_packet_free(&p);
}
void SwsDeleter::operator()(SwsContext* s) const { sws_freeContext(s); }
void SwrDeleter::operator()(SwrContext* s) const {
  if (s) swr_free(&s);
}
void FilterGraphDeleter::operator()(AVFilterGraph* g) const {
  if (g) avfilter_graph_free(&g);
}
void AudioFifoDeleter::operator()(AVAudioFifo* f) const {
  if (f) av_audio_fifo_free(f);
}
void DictionaryDeleter::operator()(AVDictionary* d) const {
  if (d) av_dict_free(&d);
}

std::string av_error_string(int errnum) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  if (av_strerror(errnum, buf, sizeof buf) < 0) return "libav error " + std::to_string(errnum);
  return buf;
}

int check(int ret, const std::string& what) {
  if (ret < 0) throw EncodeError(what + ": " + av_error_string(ret));
  return ret;
}

FramePtr make_frame() {
  FramePtr f(av_frame_alloc());
  if (!f) throw EncodeError("av_frame_alloc: out of memory");
  return f;
}

PacketPtr make_packet() {
  PacketPtr p(av_packet_alloc());
  if (!p) throw EncodeError("av_packet_alloc: out of memory");
  return p;
}

FramePtr make_video_frame(AVPixelFormat fmt, int width, int height) {
  auto f = make_frame();
  f->format = fmt;
  f->width = width;
  f->height = height;
  check(av_frame_get_buffer(f.get(), 0), "allocating a " + std::to_string(width) + "x" + std::to_string(height) + " " +
                                             (av_get_pix_fmt_name(fmt) ? av_get_pix_fmt_name(fmt) : "?") + " frame");
  return f;
}

FramePtr make_audio_frame(AVSampleFormat fmt, const AVChannelLayout& layout, int sample_rate, int nb_samples) {
  auto f = make_frame();
  f->format = fmt;
  check(av_channel_layout_copy(&f->ch_layout, &layout), "copying a channel layout");
  f->sample_rate = sample_rate;
  f->nb_samples = nb_samples;
  check(av_frame_get_buffer(f.get(), 0), "allocating an audio frame of " + std::to_string(nb_samples) + " samples");
  return f;
}

InputFormatPtr open_input(const std::string& path) {
  AVFormatContext* raw = nullptr;
  int ret = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (ret < 0) throw EncodeError(path + ": cannot open: " + av_error_string(ret));
  InputFormatPtr ctx(raw);
  ret = avformat_find_stream_info(ctx.get(), nullptr);
  if (ret < 0) throw EncodeError(path + ": cannot read stream info: " + av_error_string(ret));
  return ctx;
}

AVPixelFormat pixel_format(const std::string& name, const std::string& what) {
  AVPixelFormat fmt = av_get_pix_fmt(name.c_str());
  if (fmt == AV_PIX_FMT_NONE) throw EncodeError(what + ": unknown pixel format '" + name + "'");
  return fmt;
}

}  // namespace clipgen::stages::av
