#include "stages/image_io.h"

#include <cstring>
#include <string>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "core/error.h"
#include "core/fs.h"
#include "stages/libav.h"

namespace clipgen::stages {

Frame read_image(const std::filesystem::path& file) {
  const std::string name = file.string();
  if (!std::filesystem::exists(file)) throw EncodeError(name + ": image not found");
  auto input = av::open_input(name);
  const AVCodec* dec = nullptr;
  int index = av_find_best_stream(input.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &dec, 0);
  if (index < 0 || !dec) throw EncodeError(name + ": not an image libav can decode");
  av::CodecContextPtr ctx(avcodec_alloc_context3(dec));
  if (!ctx) throw EncodeError("avcodec_alloc_context3: out of memory");
  av::check(avcodec_parameters_to_context(ctx.get(), input->streams[index]->codecpar), name + ": codec parameters");
  av::check(avcodec_open2(ctx.get(), dec, nullptr), name + ": opening the " + std::string(dec->name) + " decoder");

  auto pkt = av::make_packet();
  auto frame = av::make_frame();
  bool sent_eof = false;
  for (;;) {
    int ret = avcodec_receive_frame(ctx.get(), frame.get());
    if (ret >= 0) break;
    if (ret == AVERROR_EOF) throw EncodeError(name + ": no picture in the file");
    if (ret != AVERROR(EAGAIN)) av::check(ret, name + ": decoding");
    if (sent_eof) throw EncodeError(name + ": no picture in the file");
    ret = av_read_frame(input.get(), pkt.get());
    if (ret == AVERROR_EOF) {
      av::check(avcodec_send_packet(ctx.get(), nullptr), name + ": decoding");
      sent_eof = true;
      continue;
    }
    av::check(ret, name + ": reading");
    if (pkt->stream_index == index) {
      ret = avcodec_send_packet(ctx.get(), pkt.get());
      av_packet_unref(pkt.get());
      av::check(ret, name + ": decoding");
    } else {
      av_packet_unref(pkt.get());
    }
  }

  const int w = frame->width, h = frame->height;
  Frame out(w, h);
  av::SwsPtr sws(sws_getContext(w, h, static_cast<AVPixelFormat>(frame->format), w, h, AV_PIX_FMT_RGB24,
                                SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
  if (!sws) {
    const char* fmt_name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format));
    throw EncodeError(name + ": cannot convert " + std::string(fmt_name ? fmt_name : "?") + " to rgb24");
  }
  uint8_t* dst[1] = {out.rgb.data()};
  const int stride[1] = {w * 3};
  sws_scale(sws.get(), frame->data, frame->linesize, 0, h, dst, stride);
  return out;
}

void write_png(const Frame& frame, const std::filesystem::path& file) {
  const std::string name = file.string();
  if (frame.width <= 0 || frame.height <= 0 || frame.rgb.size() != static_cast<size_t>(frame.width) * frame.height * 3)
    throw EncodeError(name + ": cannot write an empty or malformed frame");
  const AVCodec* enc = avcodec_find_encoder(AV_CODEC_ID_PNG);
  if (!enc) throw EncodeError("the PNG encoder is not available in this libavcodec");
  av::CodecContextPtr ctx(avcodec_alloc_context3(enc));
  if (!ctx) throw EncodeError("avcodec_alloc_context3: out of memory");
  ctx->width = frame.width;
  ctx->height = frame.height;
  ctx->pix_fmt = AV_PIX_FMT_RGB24;
  ctx->time_base = AVRational{1, 1};
  av::check(avcodec_open2(ctx.get(), enc, nullptr), name + ": opening the PNG encoder");
  auto f = av::make_video_frame(AV_PIX_FMT_RGB24, frame.width, frame.height);
  for (int y = 0; y < frame.height; ++y)
    std::memcpy(f->data[0] + y * f->linesize[0], frame.rgb.data() + static_cast<size_t>(y) * frame.width * 3,
                static_cast<size_t>(frame.width) * 3);
  f->pts = 0;
  std::string bytes;
  auto pkt = av::make_packet();
  auto drain = [&] {
    for (;;) {
      int ret = avcodec_receive_packet(ctx.get(), pkt.get());
      if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
      av::check(ret, name + ": PNG encoding");
      bytes.append(reinterpret_cast<const char*>(pkt->data), static_cast<size_t>(pkt->size));
      av_packet_unref(pkt.get());
    }
  };
  av::check(avcodec_send_frame(ctx.get(), f.get()), name + ": PNG encoding");
  drain();
  av::check(avcodec_send_frame(ctx.get(), nullptr), name + ": PNG encoding");
  drain();
  if (bytes.empty()) throw EncodeError(name + ": the PNG encoder produced no data");
  try {
    atomic_write_file(file, bytes);
  } catch (const Error& e) {
    throw EncodeError(e.what());
  }
}

}  // namespace clipgen::stages
