#include "stages/audio.h"

#include <algorithm>

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/samplefmt.h>
}

#include "core/error.h"

namespace clipgen::stages {

AudioBedReader::AudioBedReader(const std::filesystem::path& file, AVSampleFormat format,
                               const AVChannelLayout& layout, int sample_rate)
    : file_(file), format_(format), sample_rate_(sample_rate) {
  av::check(av_channel_layout_copy(&layout_, &layout), "copying a channel layout");
  if (!std::filesystem::exists(file)) throw EncodeError(file.string() + ": audio bed not found");
  input_ = av::open_input(file.string());
  const AVCodec* dec = nullptr;
  stream_index_ = av_find_best_stream(input_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &dec, 0);
  if (stream_index_ < 0 || !dec)
    throw EncodeError(file.string() + ": no decodable audio stream (" + av::av_error_string(stream_index_) + ")");
  decoder_.reset(avcodec_alloc_context3(dec));
  if (!decoder_) throw EncodeError("avcodec_alloc_context3: out of memory");
  av::check(avcodec_parameters_to_context(decoder_.get(), input_->streams[stream_index_]->codecpar),
            file.string() + ": reading the audio codec parameters");
  av::check(avcodec_open2(decoder_.get(), dec, nullptr), file.string() + ": opening the " + dec->name + " decoder");
  fifo_.reset(av_audio_fifo_alloc(format_, layout_.nb_channels, 4096));
  if (!fifo_) throw EncodeError("av_audio_fifo_alloc: out of memory");
  packet_ = av::make_packet();
  decoded_ = av::make_frame();
}

AudioBedReader::~AudioBedReader() { av_channel_layout_uninit(&layout_); }

void AudioBedReader::setup_resampler(const AVFrame* first) {
  AVChannelLayout in_layout{};
  if (first->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || first->ch_layout.nb_channels == 0) {
    // Files without a layout (e.g. some WAVs): assume the default layout for the channel count.
    int n = first->ch_layout.nb_channels > 0 ? first->ch_layout.nb_channels : decoder_->ch_layout.nb_channels;
    av_channel_layout_default(&in_layout, n);
  } else {
    av::check(av_channel_layout_copy(&in_layout, &first->ch_layout), "copying a channel layout");
  }
  SwrContext* raw = nullptr;
  int ret = swr_alloc_set_opts2(&raw, &layout_, format_, sample_rate_, &in_layout,
                                static_cast<AVSampleFormat>(first->format), first->sample_rate, 0, nullptr);
  av_channel_layout_uninit(&in_layout);
  swr_.reset(raw);
  av::check(ret, file_.string() + ": configuring the resampler");
  av::check(swr_init(swr_.get()), file_.string() + ": initialising the resampler");
}

void AudioBedReader::push_converted(const AVFrame* in) {
  if (!swr_) return;  // nothing was ever decoded
  int in_samples = in ? in->nb_samples : 0;
  int cap = swr_get_out_samples(swr_.get(), in_samples);
  if (cap <= 0) return;
  auto out = av::make_audio_frame(format_, layout_, sample_rate_, cap);
  int got = swr_convert(swr_.get(), out->data, cap, in ? const_cast<const uint8_t**>(in->extended_data) : nullptr,
                        in_samples);
  av::check(got, file_.string() + ": resampling");
  if (got > 0 && av_audio_fifo_write(fifo_.get(), reinterpret_cast<void**>(out->data), got) < got)
    throw EncodeError("audio FIFO write failed");
}

void AudioBedReader::fill(int nb_samples) {
  while (!eof_ && av_audio_fifo_size(fifo_.get()) < nb_samples) {
    // Drain every frame the decoder has ready.
    int ret = avcodec_receive_frame(decoder_.get(), decoded_.get());
    if (ret >= 0) {
      if (!swr_) setup_resampler(decoded_.get());
      push_converted(decoded_.get());
      av_frame_unref(decoded_.get());
      continue;
    }
    if (ret == AVERROR_EOF) {
      push_converted(nullptr);  // the resampler's delayed samples
      eof_ = true;
      break;
    }
    if (ret != AVERROR(EAGAIN)) av::check(ret, file_.string() + ": decoding audio");
    if (demux_eof_) {
      av::check(avcodec_send_packet(decoder_.get(), nullptr), file_.string() + ": flushing the audio decoder");
      continue;
    }
    ret = av_read_frame(input_.get(), packet_.get());
    if (ret == AVERROR_EOF) {
      demux_eof_ = true;
      av::check(avcodec_send_packet(decoder_.get(), nullptr), file_.string() + ": flushing the audio decoder");
      continue;
    }
    av::check(ret, file_.string() + ": reading");
    if (packet_->stream_index == stream_index_) {
      ret = avcodec_send_packet(decoder_.get(), packet_.get());
      av_packet_unref(packet_.get());
      // A damaged packet is skipped (as the ffmpeg CLI does); any other error is fatal.
      if (ret < 0 && ret != AVERROR_INVALIDDATA) av::check(ret, file_.string() + ": decoding audio");
    } else {
      av_packet_unref(packet_.get());
    }
  }
}

av::FramePtr AudioBedReader::read(int nb_samples) {
  auto out = av::make_audio_frame(format_, layout_, sample_rate_, nb_samples);
  fill(nb_samples);
  int have = std::min(nb_samples, av_audio_fifo_size(fifo_.get()));
  if (have > 0 && av_audio_fifo_read(fifo_.get(), reinterpret_cast<void**>(out->data), have) < have)
    throw EncodeError("audio FIFO read failed");
  if (have < nb_samples)
    av_samples_set_silence(out->data, have, nb_samples - have, layout_.nb_channels, format_);
  delivered_ += nb_samples;
  bed_delivered_ += have;
  return out;
}

}  // namespace clipgen::stages
