// RAII ownership and error handling for libav* objects, shared by the stages that use libav
// (encode, post, audio, image_io). Internal to clipgen_stages: the public stage headers never include
// it, so only stages/*.cpp (and their tests) see libav types.
//
// Every libav object is a std::unique_ptr with a deleter that calls the matching libav free function;
// every failing libav call becomes a clipgen::EncodeError that says what was attempted and libav's
// own error text (av_strerror).
#pragma once
#include <memory>
#include <string>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/frame.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

namespace clipgen::stages::av {

// An output muxer context: closes its AVIOContext (when the format writes to a file) and frees it.
struct OutputFormatDeleter {
  void operator()(AVFormatContext* ctx) const;
};
// A demuxer context opened with avformat_open_input: avformat_close_input.
struct InputFormatDeleter {
  void operator()(AVFormatContext* ctx) const;
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* ctx) const;
};
struct FrameDeleter {
  void operator()(AVFrame* f) const;
};
struct PacketDeleter {
  void operator()(AVPacket* p) const;
};
struct SwsDeleter {
  void operator()(SwsContext* s) const;
};
struct SwrDeleter {
  void operator()(SwrContext* s) const;
};
struct FilterGraphDeleter {
  void operator()(AVFilterGraph* g) const;
};
struct AudioFifoDeleter {
  void operator()(AVAudioFifo* f) const;
};
struct DictionaryDeleter {
  void operator()(AVDictionary* d) const;
};

using OutputFormatPtr = std::unique_ptr<AVFormatContext, OutputFormatDeleter>;
using InputFormatPtr = std::unique_ptr<AVFormatContext, InputFormatDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;
using FilterGraphPtr = std::unique_ptr<AVFilterGraph, FilterGraphDeleter>;
using AudioFifoPtr = std::unique_ptr<AVAudioFifo, AudioFifoDeleter>;

// av_strerror as a std::string (the av_err2str macro is not valid C++).
std::string av_error_string(int errnum);

// Throws EncodeError("<what>: <libav error text>") when ret < 0; returns ret otherwise.
int check(int ret, const std::string& what);

// Allocation helpers that throw EncodeError instead of returning null.
FramePtr make_frame();
PacketPtr make_packet();
// A frame with its own buffers (av_frame_get_buffer) for a video raster or an audio block.
FramePtr make_video_frame(AVPixelFormat fmt, int width, int height);
FramePtr make_audio_frame(AVSampleFormat fmt, const AVChannelLayout& layout, int sample_rate, int nb_samples);

// Opens a media file for reading and reads its stream info. Throws EncodeError naming the file.
InputFormatPtr open_input(const std::string& path);

// A pixel/sample format by libav name; throws EncodeError naming `what` when unknown.
AVPixelFormat pixel_format(const std::string& name, const std::string& what);

}  // namespace clipgen::stages::av
