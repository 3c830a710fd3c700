#include "scenes/judge.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace clipgen::scenes {

namespace {

Rgb median_of(std::vector<std::array<uint8_t, 3>>& px) {
  Rgb out;
  if (px.empty()) return out;
  float* dst[3] = {&out.r, &out.g, &out.b};
  std::vector<uint8_t> ch(px.size());
  for (int c = 0; c < 3; ++c) {
    for (size_t i = 0; i < px.size(); ++i) ch[i] = px[i][static_cast<size_t>(c)];
    std::nth_element(ch.begin(), ch.begin() + static_cast<long>(ch.size() / 2), ch.end());
    *dst[c] = ch[ch.size() / 2];
  }
  return out;
}

float dist2(const Rgb& a, const Rgb& b) {
  return (a.r - b.r) * (a.r - b.r) + (a.g - b.g) * (a.g - b.g) + (a.b - b.b) * (a.b - b.b);
}

template <class E, int N>
E nearest(const Rgb& c) {
  int best = 0;
  float bd = 1e30f;
  for (int i = 0; i < N; ++i) {
    const float d = dist2(c, reference(static_cast<E>(i)));
    if (d < bd) bd = d, best = i;
  }
  return static_cast<E>(best);
}

Rgb region_median(const uint8_t* rgb, int w, int y0, int y1) {
  std::vector<std::array<uint8_t, 3>> px;
  for (int y = y0; y < y1; ++y)
    for (int x = 0; x < w; ++x) {
      const uint8_t* p = rgb + (static_cast<size_t>(y) * w + x) * 3;
      px.push_back({p[0], p[1], p[2]});
    }
  return median_of(px);
}

}  // namespace

Judgement judge(const uint8_t* rgb, int w, int h, int min_blob) {
  Judgement j;
  j.sky = nearest<Sky, kSkies>(region_median(rgb, w, 0, std::max(1, h * 22 / 100)));
  j.ground = nearest<Ground, kGrounds>(region_median(rgb, w, h - std::max(1, h * 12 / 100), h));

  // Pixels far from their row's median colour.
  std::vector<uint8_t> far(static_cast<size_t>(w) * h, 0);
  for (int y = 0; y < h; ++y) {
    const Rgb m = region_median(rgb, w, y, y + 1);
    for (int x = 0; x < w; ++x) {
      const uint8_t* p = rgb + (static_cast<size_t>(y) * w + x) * 3;
      far[static_cast<size_t>(y) * w + x] = dist2(Rgb{float(p[0]), float(p[1]), float(p[2])}, m) > 55.0f * 55.0f;
    }
  }
  // Largest 4-connected blob.
  std::vector<int> label(far.size(), -1), stack, best;
  for (size_t start = 0; start < far.size(); ++start) {
    if (!far[start] || label[start] >= 0) continue;
    std::vector<int> blob;
    stack.assign(1, static_cast<int>(start));
    label[start] = 1;
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      blob.push_back(i);
      const int x = i % w, y = i / w;
      const int nb[4][2] = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
      for (const auto& n : nb) {
        if (n[0] < 0 || n[0] >= w || n[1] < 0 || n[1] >= h) continue;
        const int k = n[1] * w + n[0];
        if (far[static_cast<size_t>(k)] && label[static_cast<size_t>(k)] < 0) {
          label[static_cast<size_t>(k)] = 1;
          stack.push_back(k);
        }
      }
    }
    if (blob.size() > best.size()) best.swap(blob);
  }
  if (static_cast<int>(best.size()) >= min_blob) {
    std::vector<std::array<uint8_t, 3>> px;
    double sx = 0, sy = 0;
    for (int i : best) {
      const uint8_t* p = rgb + static_cast<size_t>(i) * 3;
      px.push_back({p[0], p[1], p[2]});
      sx += i % w;
      sy += static_cast<double>(i / w);
    }
    j.object = nearest<Colour, kColours>(median_of(px));
    j.object_pixels = static_cast<int>(best.size());
    j.object_cx = static_cast<float>(sx / static_cast<double>(best.size()));
    j.object_cy = static_cast<float>(sy / static_cast<double>(best.size()));
  }
  return j;
}

}  // namespace clipgen::scenes
