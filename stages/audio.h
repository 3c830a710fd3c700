// Audio bed: any libav-readable audio file, decoded and resampled (libswresample) to the format an
// audio encoder wants, then delivered block by block. After the file ends the reader delivers silence,
// so a clip longer than its bed is padded; the encoder asks for exactly the clip's number of samples,
// so a longer bed is trimmed. Used by stages::Encoder; internal to clipgen_stages (uses libav types).
#pragma once
#include <cstdint>
#include <filesystem>

#include "stages/libav.h"

namespace clipgen::stages {

class AudioBedReader {
public:
  // Opens `file` and its best audio stream. Throws EncodeError naming the file when it cannot be
  // opened or has no decodable audio stream.
  AudioBedReader(const std::filesystem::path& file, AVSampleFormat format, const AVChannelLayout& layout,
                 int sample_rate);
  ~AudioBedReader();
  AudioBedReader(const AudioBedReader&) = delete;
  AudioBedReader& operator=(const AudioBedReader&) = delete;

  // The next `nb_samples` samples in the target format: the bed's audio while it lasts, then silence.
  av::FramePtr read(int nb_samples);

  int64_t samples_delivered() const { return delivered_; }
  // Samples of real (non-padding) audio delivered so far.
  int64_t bed_samples_delivered() const { return bed_delivered_; }
  // True once the file is fully decoded (and the resampler drained).
  bool bed_ended() const { return eof_; }
  const std::filesystem::path& file() const { return file_; }

private:
  void fill(int nb_samples);   // decodes until the FIFO holds nb_samples or the file ends
  void push_converted(const AVFrame* in);  // resamples `in` (null: drain) into the FIFO
  void setup_resampler(const AVFrame* first);

  std::filesystem::path file_;
  AVSampleFormat format_;
  AVChannelLayout layout_{};
  int sample_rate_;
  av::InputFormatPtr input_;
  av::CodecContextPtr decoder_;
  av::SwrPtr swr_;
  av::AudioFifoPtr fifo_;
  av::PacketPtr packet_;
  av::FramePtr decoded_;
  int stream_index_ = -1;
  bool demux_eof_ = false, eof_ = false;
  int64_t delivered_ = 0, bed_delivered_ = 0;
};

}  // namespace clipgen::stages
