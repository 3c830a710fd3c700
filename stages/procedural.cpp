#include "stages/procedural.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string_view>

namespace clipgen::stages {
namespace {

constexpr float kPi = 3.14159265358979f;

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform float in [0, 1) from a 64-bit state (advanced).
float next01(uint64_t& state) {
  state = splitmix64(state);
  return static_cast<float>(state >> 40) / static_cast<float>(1ull << 24);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool has_word(const std::string& lower, std::string_view w) { return lower.find(w) != std::string::npos; }

struct RGB {
  float r, g, b;
};

RGB hsv(float h, float s, float v) {
  h = h - std::floor(h);
  const float i = std::floor(h * 6.f), f = h * 6.f - i;
  const float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (static_cast<int>(i) % 6) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}

RGB mix(RGB a, RGB b, float t) { return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t}; }

uint8_t to8(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f)); }

float smooth(float e0, float e1, float x) {
  const float t = std::clamp((x - e0) / (e1 - e0), 0.f, 1.f);
  return t * t * (3 - 2 * t);
}

}  // namespace

std::array<float, SceneParams::kCount> SceneParams::to_array() const {
  return {hue, saturation, daylight, sun_x, sun_y, hill_hue, cloud_cover, pan_speed};
}

SceneParams SceneParams::from_array(const float* v) {
  return SceneParams{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
}

static float blend_hue(float a, float b, float t) {
  float d = b - a;
  d -= std::round(d);  // shortest way round
  float h = a + d * t;
  return h - std::floor(h);
}

SceneParams blend(const SceneParams& a, const SceneParams& b, float t) {
  auto l = [t](float x, float y) { return x + (y - x) * t; };
  return SceneParams{blend_hue(a.hue, b.hue, t), l(a.saturation, b.saturation), l(a.daylight, b.daylight),
                     l(a.sun_x, b.sun_x),        l(a.sun_y, b.sun_y),           blend_hue(a.hill_hue, b.hill_hue, t),
                     l(a.cloud_cover, b.cloud_cover), l(a.pan_speed, b.pan_speed)};
}

float transition_weight(double frame, double start, double length) {
  if (length <= 0) return frame >= start ? 1.f : 0.f;
  return smooth(0.f, 1.f, static_cast<float>((frame - start) / length));
}

ProceduralScene::ProceduralScene(uint64_t seed) : seed_(seed) {
  uint64_t st = splitmix64(seed ^ 0x5CE4E11Dull);
  for (auto& p : hill_phase_) p = next01(st) * 2 * kPi;
  for (auto& c : cloud_) c = next01(st);
}

SceneParams ProceduralScene::params_for_prompt(const std::string& prompt, uint64_t seed) {
  std::string lower(prompt);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  uint64_t st = splitmix64(fnv1a(lower) ^ splitmix64(seed));
  SceneParams p;
  // Sky hues people expect: mostly blue to violet, sometimes warm.
  const float pick = next01(st), h = next01(st);
  p.hue = pick < 0.75f ? 0.52f + 0.16f * h : 0.02f + 0.1f * h;
  p.saturation = 0.35f + 0.45f * next01(st);
  p.daylight = 0.55f + 0.45f * next01(st);
  p.sun_x = 0.15f + 0.7f * next01(st);
  p.sun_y = 0.12f + 0.3f * next01(st);
  p.hill_hue = next01(st);
  p.cloud_cover = 0.15f + 0.6f * next01(st);
  p.pan_speed = (next01(st) < 0.5f ? -1.f : 1.f) * (0.015f + 0.03f * next01(st));
  // A few words steer the palette (the rest is the hash).
  if (has_word(lower, "night") || has_word(lower, "moon")) {
    p.daylight = 0.08f;
    p.hue = 0.62f + 0.06f * (p.hue - 0.5f);
  }
  if (has_word(lower, "sunset") || has_word(lower, "dusk") || has_word(lower, "dawn") || has_word(lower, "sunrise")) {
    p.daylight = 0.45f;
    p.hue = 0.04f + 0.06f * p.hue;
    p.saturation = std::max(p.saturation, 0.7f);
    p.sun_y = 0.55f;
  }
  if (has_word(lower, "forest")) p.hill_hue = 0.30f + 0.05f * (p.hill_hue - 0.5f);
  if (has_word(lower, "desert")) p.hill_hue = 0.09f + 0.03f * (p.hill_hue - 0.5f);
  if (has_word(lower, "ocean") || has_word(lower, "sea")) p.hill_hue = 0.55f + 0.05f * (p.hill_hue - 0.5f);
  if (has_word(lower, "snow")) {
    p.hill_hue = 0.58f;
    p.saturation *= 0.4f;
  }
  return p;
}

Frame ProceduralScene::render(const SceneParams& p, double t_seconds, int width, int height) const {
  Frame f(width, height);
  const float W = static_cast<float>(width), H = static_cast<float>(height);
  const float t = static_cast<float>(t_seconds);
  const float day = std::clamp(p.daylight, 0.f, 1.f);
  const float night = 1 - day;
  // Sky: zenith → horizon gradient from the hue; darker and bluer at night.
  const RGB zenith = hsv(p.hue, std::clamp(p.saturation + 0.2f * night, 0.f, 1.f), 0.15f + 0.7f * day);
  const RGB horizon = hsv(p.hue + 0.04f * (1 - day), p.saturation * 0.55f, 0.25f + 0.75f * day);
  const RGB sun_col = night > 0.6f ? RGB{0.92f, 0.93f, 0.88f} : hsv(0.1f + 0.05f * day, 0.6f * (1 - day) + 0.1f, 1.f);
  const float sun_r = 0.06f * std::min(W, H) * (night > 0.6f ? 0.8f : 1.f);
  const float pan = t * p.pan_speed * W;  // camera offset in pixels
  const float sx = p.sun_x * W - pan * 0.05f, sy = p.sun_y * H;
  // Hills: three layers, far (pale, slow) to near (dark, fast).
  const float base[3] = {0.58f, 0.68f, 0.8f};
  const float amp[3] = {0.08f, 0.07f, 0.06f};
  const float depth[3] = {0.25f, 0.55f, 1.0f};
  RGB hill_col[3];
  for (int l = 0; l < 3; ++l) {
    const float v = (0.55f - 0.15f * l) * (0.25f + 0.75f * day);
    hill_col[l] = mix(hsv(p.hill_hue, 0.25f + 0.15f * l, v), horizon, 0.45f - 0.18f * l);
  }
  std::array<std::vector<float>, 3> ridge;
  for (int l = 0; l < 3; ++l) {
    ridge[l].resize(static_cast<size_t>(width));
    for (int x = 0; x < width; ++x) {
      const float u = (x + pan * depth[l]) / W;
      float h = 0;
      for (int o = 0; o < 3; ++o)
        h += std::sin(u * kPi * (1.3f + 1.9f * o + l) + hill_phase_[static_cast<size_t>(l * 3 + o)]) / (1.f + o * 1.7f);
      ridge[l][static_cast<size_t>(x)] = (base[l] - amp[l] * h) * H;
    }
  }
  for (int y = 0; y < height; ++y) {
    const float fy = static_cast<float>(y);
    const RGB sky_row = mix(zenith, horizon, smooth(0.f, 0.65f * H, fy));
    for (int x = 0; x < width; ++x) {
      const float fx = static_cast<float>(x);
      RGB c = sky_row;
      // Sun / moon disc with a soft glow.
      const float d = std::hypot(fx - sx, fy - sy);
      c = mix(c, sun_col, 0.35f * std::exp(-d / (sun_r * 3.f)) * (0.4f + 0.6f * day));
      c = mix(c, sun_col, 1.f - smooth(sun_r - 1.5f, sun_r + 1.5f, d));
      // Clouds: soft ellipses drifting right at their own speed, wrapping around.
      for (int k = 0; k < 4; ++k) {
        const float cx0 = cloud_[static_cast<size_t>(k * 3)], cy = cloud_[static_cast<size_t>(k * 3 + 1)] * 0.35f * H + 0.05f * H;
        const float size = (0.08f + 0.12f * cloud_[static_cast<size_t>(k * 3 + 2)]) * W;
        float cx = std::fmod(cx0 * W * 1.4f + t * (6.f + 4.f * k) - pan * 0.15f, W * 1.4f);
        if (cx < 0) cx += W * 1.4f;
        cx -= 0.2f * W;
        const float e = ((fx - cx) * (fx - cx)) / (size * size) + ((fy - cy) * (fy - cy)) / (size * size * 0.12f);
        const float a = p.cloud_cover * (1.f - smooth(0.3f, 1.f, e));
        if (a > 0) c = mix(c, mix(RGB{1, 1, 1}, horizon, 0.3f + 0.5f * night), a);
      }
      // Hills, far to near.
      for (int l = 0; l < 3; ++l) {
        const float r = ridge[l][static_cast<size_t>(x)];
        const float cover = smooth(r - 0.8f, r + 0.8f, fy);
        if (cover > 0) {
          const float shade = 1.f - 0.25f * smooth(r, H, fy);  // darker towards the bottom
          const RGB hc{hill_col[l].r * shade, hill_col[l].g * shade, hill_col[l].b * shade};
          c = mix(c, hc, cover);
        }
      }
      uint8_t* px = f.pixel(x, y);
      px[0] = to8(c.r);
      px[1] = to8(c.g);
      px[2] = to8(c.b);
    }
  }
  (void)seed_;
  return f;
}

}  // namespace clipgen::stages
