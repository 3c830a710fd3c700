// The post stage: generated frames (generation raster, generation fps) -> frames at the preset's
// raster and fps, ready for the encoder. A libavfilter graph does the work:
//   fit:    crop      scale (Lanczos) to cover the preset raster, then crop the centre
//           letterbox scale (Lanczos) to fit inside, then pad with black bars, centred
//           stretch   scale (Lanczos) to the preset raster, ignoring the aspect ratio
//   retime: dup       fps filter: repeat/drop whole frames to the nearest output time
//           blend     framerate filter: cross-fade the two neighbouring input frames
//           mci       minterpolate mi_mode=mci: motion-compensated interpolation
// Retiming runs at the smaller of the two rasters (cheaper); blend and mci work in full-range
// BT.709 yuv444p (those filters have no RGB path), everything else stays RGB24.
//
// Frame count: N input frames at src_fps cover [0, N/src_fps), so flush() makes the total number of
// output frames exactly round(N * dst_fps / src_fps) (ties away from zero). The end is handled so:
// the filter graph is told that the stream ends at N/src_fps (dup) — blend and mci first get the
// last input frame repeated 2 (blend) or 4 (mci) more times, because framerate/minterpolate need
// look-ahead and otherwise drop the tail; push() holds back the newest output frame (it may lie past
// the end); flush() cuts the surplus frames after the count, or, should the filters fall short,
// repeats the last frame (adjustment() reports how many frames were added or cut).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "configs/preset.h"
#include "configs/shot.h"
#include "stages/frame.h"

namespace clipgen::stages {

class PostProcessor {
public:
  // Throws EncodeError for unknown fit/retime modes or a filter graph libavfilter rejects.
  PostProcessor(int src_width, int src_height, configs::Rational src_fps, const configs::Preset& preset,
                const configs::Post& post);
  ~PostProcessor();
  PostProcessor(const PostProcessor&) = delete;
  PostProcessor& operator=(const PostProcessor&) = delete;

  // Feeds the next generated frame (src raster); returns the output frames that are final now.
  std::vector<Frame> push(const Frame& frame);
  // Ends the stream; returns the remaining output frames.
  std::vector<Frame> flush();

  int64_t frames_in() const;
  int64_t frames_out() const;
  // Output frames added (> 0, repeats of the last frame) or dropped (< 0) by flush() to reach
  // round(N * dst_fps / src_fps); 0 when the filters produced exactly that many.
  int64_t adjustment() const;
  // The libavfilter graph description in use (for logs).
  const std::string& filter_description() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The output frame count for `n` input frames: round(n * dst / src).
int64_t retimed_frame_count(int64_t n, configs::Rational src, configs::Rational dst);

}  // namespace clipgen::stages
