// The encode stage: RGB24 frames (stages::Frame, already at the preset raster — the post stage makes
// them so) in, a delivery file out, written with libav* as the preset says (codec, profile, pixel
// format, rate control, GOP, colour, container, faststart, audio bed, metadata). See docs/encoding.md.
//
// Streaming: construct, write() each frame in order, finish(). The file is written under a temporary
// name in the output folder (core/fs.h temp_path_for) and renamed onto the final name only by a
// successful finish(); an Encoder destroyed without finish() (exception, cancellation) removes the
// temporary file, so a half-written clip never appears under its final name.
//
// Threads: write() converts RGB24 -> YUV (libswscale, BT.709 matrix, preset range) on the caller's
// thread and hands the converted frame to an encoder thread that runs the codec(s) and the muxer, so
// conversion of frame n+1 overlaps encoding of frame n (the codecs add their own frame threads).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "configs/preset.h"
#include "stages/frame.h"

namespace clipgen::stages {

// Written into the container metadata (mp4/mov: as mdta tags; mkv/webm: as tags):
//   clipgen_version, clipgen_shot_id, clipgen_seed, clipgen_shot (the JSON), and a readable "comment".
struct EncodeMetadata {
  std::string clipgen_version;
  std::string shot_id;
  uint64_t seed = 0;
  std::string shot_json;  // compact JSON of the fully resolved shot (configs::Shot::to_json())
};

struct EncoderOptions {
  // Converted frames that may wait for the encoder thread. 0 = no encoder thread: conversion and
  // encoding both run inside write() (for measurements).
  int queue_depth = 4;
};

class Encoder {
public:
  // Opens the codec(s) and writes the container header to the temporary file. `audio_bed`: an audio
  // file of any libav-readable format; it is resampled to preset.audio, trimmed or padded with silence
  // to exactly the video's length (frames written / fps) and muxed interleaved with the video. With
  // preset.audio.enabled == false the bed is ignored. Throws EncodeError (codec/option/file problems).
  Encoder(const configs::Preset& preset, std::filesystem::path output, EncodeMetadata metadata,
          std::optional<std::filesystem::path> audio_bed = std::nullopt, EncoderOptions options = {});
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // Frame n of the clip is shown at n / fps exactly. Throws EncodeError when the frame's raster is not
  // the preset's, or when the encoder thread failed (its error is rethrown here or in finish()).
  void write(const Frame& frame);

  // Flushes the codecs, completes the audio bed, writes the trailer (moving moov to the front for
  // faststart) and renames the temporary file onto the final name. Returns the final path.
  std::filesystem::path finish();

  int64_t frames_written() const;
  const std::filesystem::path& output() const;
  const std::filesystem::path& temp_path() const;  // where the file is while being written

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The container name libav uses for preset.container (mp4 -> mp4, mov -> mov, mkv -> matroska,
// webm -> webm). Throws EncodeError for anything else.
std::string muxer_name(const std::string& container);

}  // namespace clipgen::stages
