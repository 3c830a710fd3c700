#include "scenes/scene.h"

#include <algorithm>
#include <cmath>

namespace clipgen::scenes {

namespace {

constexpr float kPi = 3.14159265358979f;

struct Gradient {
  Rgb a, b;  // top (or far) → bottom (or near)
};

Rgb lerp(const Rgb& a, const Rgb& b, float t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}
Rgb scale(const Rgb& c, float f) { return {c.r * f, c.g * f, c.b * f}; }

Gradient sky_gradient(Sky s) {
  switch (s) {
    case Sky::Clear: return {{55, 115, 205}, {165, 200, 235}};
    case Sky::Sunset: return {{195, 65, 110}, {250, 150, 60}};
    case Sky::Night: return {{8, 12, 38}, {25, 35, 75}};
    case Sky::Overcast: return {{125, 128, 135}, {178, 180, 185}};
  }
  return {};
}

Gradient ground_gradient(Ground g) {
  switch (g) {
    case Ground::Grass: return {{85, 140, 50}, {50, 105, 30}};
    case Ground::Sand: return {{225, 200, 150}, {200, 170, 115}};
    case Ground::Snow: return {{238, 240, 246}, {214, 222, 236}};
    case Ground::Sea: return {{35, 100, 125}, {12, 55, 92}};
  }
  return {};
}

// Hash of integer coordinates → [0, 1).
float hash01(uint64_t seed, int64_t x, int64_t y) {
  uint64_t h = mix_seed(seed, static_cast<uint64_t>(x) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(y));
  return static_cast<float>(h >> 40) / static_cast<float>(1ull << 24);
}

// Smooth value noise on a grid of `cell` pixels.
float value_noise(uint64_t seed, float x, float y, float cell) {
  const float gx = x / cell, gy = y / cell;
  const auto ix = static_cast<int64_t>(std::floor(gx)), iy = static_cast<int64_t>(std::floor(gy));
  float fx = gx - static_cast<float>(ix), fy = gy - static_cast<float>(iy);
  fx = fx * fx * (3 - 2 * fx);
  fy = fy * fy * (3 - 2 * fy);
  const float a = hash01(seed, ix, iy), b = hash01(seed, ix + 1, iy), c = hash01(seed, ix, iy + 1),
              d = hash01(seed, ix + 1, iy + 1);
  return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy;
}

// Coverage of a pixel by a shape from its signed distance (pixels, negative inside): a one-pixel ramp.
float coverage(float signed_distance) { return std::clamp(0.5f - signed_distance, 0.0f, 1.0f); }

Rgb object_colour(const Scene& s) {
  Rgb c = reference(s.colour);
  // Jitter stays inside the class: chromatic colours vary ±10 % per channel, white and black ±4 %.
  const bool neutral = s.colour == Colour::White || s.colour == Colour::Black;
  const float amp = neutral ? 10.0f : 22.0f;
  c.r += amp * s.jitter[0];
  c.g += amp * s.jitter[1];
  c.b += amp * s.jitter[2];
  return c;
}

struct Placed {
  float cx, cy, size;  // pixels
};

Placed place_object(const Scene& s, int w, int h, double t) {
  const float short_side = static_cast<float>(std::min(w, h));
  const auto tf = static_cast<float>(t);
  float cx = s.obj_x * static_cast<float>(w) + s.motion.vx * tf * short_side;
  float cy = s.obj_y * static_cast<float>(h) + s.motion.vy * tf * short_side;
  if (s.motion.bounce > 0)
    cy -= s.motion.bounce * short_side * std::fabs(std::sin(kPi * tf / std::max(0.1f, s.motion.bounce_period)));
  return {cx, cy, s.obj_size * short_side};
}

// Signed distance to the object's silhouette and its shading factor at (x, y).
float object_distance(const Scene& s, const Placed& p, float x, float y, float& shade) {
  const float dx = x - p.cx, dy = y - p.cy;
  switch (s.object) {
    case Object::Ball: {
      const float r = p.size / 2;
      const float d = std::sqrt(dx * dx + dy * dy);
      shade = 1.08f - 0.28f * std::clamp((dx + dy) / (1.414f * r), -1.0f, 1.0f);
      return d - r;
    }
    case Object::Box: {
      const float hw = p.size / 2, hh = p.size * 0.42f;
      const float qx = std::fabs(dx) - hw, qy = std::fabs(dy) - hh;
      shade = dy < -hh + p.size * 0.18f ? 1.15f : (dx > hw * 0.55f ? 0.85f : 1.0f);  // lit top, shaded side
      return std::max(qx, qy);
    }
    case Object::Kite: {
      const float hw = p.size / 2, hh = p.size * 0.7f;
      // |dx|/hw + |dy|/hh ≤ 1, as a distance in pixels (scaled by the smaller half-axis).
      const float d = (std::fabs(dx) / hw + std::fabs(dy) / hh - 1) * std::min(hw, hh) * 0.8f;
      shade = dx < 0 ? 1.1f : 0.9f;
      return d;
    }
  }
  shade = 1;
  return 1e9f;
}

// Distance to the kite's string (a straight line from the bottom tip, down and to the left).
float string_distance(const Placed& p, float x, float y) {
  const float x0 = p.cx, y0 = p.cy + p.size * 0.7f;
  const float x1 = x0 - p.size * 0.5f, y1 = y0 + p.size * 1.2f;
  const float vx = x1 - x0, vy = y1 - y0, wx = x - x0, wy = y - y0;
  const float u = std::clamp((wx * vx + wy * vy) / (vx * vx + vy * vy), 0.0f, 1.0f);
  const float ex = wx - u * vx, ey = wy - u * vy;
  return std::sqrt(ex * ex + ey * ey);
}

float cloud_distance(const Scene& s, float x, float y, float short_side, float horizon_px, double t) {
  float best = 1e9f;
  Rng r(mix_seed(s.detail_seed, 77));
  const int n = 2 + r.below(2);
  for (int i = 0; i < n; ++i) {
    const float size = short_side * static_cast<float>(r.uniform(0.12, 0.22));
    float cx = static_cast<float>(r.uniform(0, 1)) * short_side * 1.8f +
               s.motion.cloud_drift * static_cast<float>(t) * short_side;
    const float span = short_side * 1.8f + size * 4;
    cx = std::fmod(cx + size * 2, span);
    if (cx < 0) cx += span;
    cx -= size * 2;
    const float cy = horizon_px * static_cast<float>(r.uniform(0.12, 0.55));
    for (int k = 0; k < 3; ++k) {
      const float ox = (static_cast<float>(k) - 1) * size * 0.75f, oy = (k == 1 ? -0.3f : 0.05f) * size;
      const float rr = size * (k == 1 ? 0.62f : 0.45f);
      const float ddx = x - (cx + ox), ddy = (y - (cy + oy)) * 1.25f;
      best = std::min(best, std::sqrt(ddx * ddx + ddy * ddy) - rr);
    }
  }
  return best;
}

Rgb cloud_colour(Sky s) {
  switch (s) {
    case Sky::Sunset: return {250, 205, 195};
    case Sky::Night: return {85, 90, 115};
    default: return {245, 246, 250};
  }
}

}  // namespace

const char* name(Sky s) {
  static const char* n[] = {"clear", "sunset", "night", "overcast"};
  return n[static_cast<int>(s)];
}
const char* name(Ground g) {
  static const char* n[] = {"grass", "sand", "snow", "sea"};
  return n[static_cast<int>(g)];
}
const char* name(Object o) {
  static const char* n[] = {"ball", "box", "kite"};
  return n[static_cast<int>(o)];
}
const char* name(Colour c) {
  static const char* n[] = {"red", "orange", "yellow", "green", "blue", "purple", "white", "black"};
  return n[static_cast<int>(c)];
}

Rgb reference(Colour c) {
  switch (c) {
    case Colour::Red: return {215, 35, 35};
    case Colour::Orange: return {245, 135, 25};
    case Colour::Yellow: return {240, 215, 40};
    case Colour::Green: return {40, 195, 75};
    case Colour::Blue: return {35, 75, 220};
    case Colour::Purple: return {135, 50, 185};
    case Colour::White: return {245, 245, 245};
    case Colour::Black: return {20, 20, 20};
  }
  return {};
}
Rgb reference(Sky s) {
  const auto g = sky_gradient(s);
  return lerp(g.a, g.b, 0.2f);
}
Rgb reference(Ground g) {
  const auto gr = ground_gradient(g);
  return lerp(gr.a, gr.b, 0.9f);
}

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Rng::next() {
  uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double Rng::uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
int Rng::below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }

int Image::object_pixels() const {
  int n = 0;
  for (uint8_t m : object_mask) n += m;
  return n;
}

Scene sample_scene(uint64_t seed) {
  Rng r(mix_seed(seed, 0x5CE7E));
  Scene s;
  s.sky = static_cast<Sky>(r.below(kSkies));
  s.ground = static_cast<Ground>(r.below(kGrounds));
  s.object = static_cast<Object>(r.below(kObjects));
  s.colour = static_cast<Colour>(r.below(kColours));
  s.horizon = static_cast<float>(r.uniform(0.55, 0.8));
  s.obj_size = static_cast<float>(r.uniform(0.10, 0.35));
  for (auto& j : s.jitter) j = static_cast<float>(r.uniform(-1, 1));
  s.sky_jitter = static_cast<float>(r.uniform(-1, 1));
  s.ground_jitter = static_cast<float>(r.uniform(-1, 1));
  s.detail_seed = r.next();
  // Positions are fractions of the width/height, sizes fractions of the short side: placing in the
  // vertical 9:16 frame keeps the object inside any aspect up to 16:9 too (the renderer clips otherwise).
  const float aspect = 9.0f / 16.0f;  // short / long side of the reference (vertical) frame
  const float half_w = s.obj_size / 2, half_h = s.obj_size * 0.7f * aspect;
  s.obj_x = static_cast<float>(r.uniform(half_w + 0.03, 1 - half_w - 0.03));
  const bool on_ground = s.object == Object::Box || (s.object == Object::Ball && r.below(2) == 0);
  if (on_ground) {
    const float lo = s.horizon + half_h * 0.6f, hi = 0.95f - half_h;
    s.obj_y = static_cast<float>(r.uniform(std::min(lo, hi), std::max(lo, hi)));
  } else {
    const float lo = 0.08f + half_h, hi = s.horizon - half_h - 0.04f;
    s.obj_y = static_cast<float>(r.uniform(std::min(lo, hi), std::max(lo, hi)));
  }
  const bool day = s.sky == Sky::Clear || s.sky == Sky::Sunset;
  s.sun = day && r.below(4) == 0;
  s.moon = !s.sun && (s.sky == Sky::Night || s.sky == Sky::Clear) && r.below(4) == 0;
  s.clouds = s.sky != Sky::Overcast && r.below(4) == 0;
  if (s.sun || s.moon) {
    // A disc away from the object (falls back to the far side of the frame).
    for (int attempt = 0; attempt < 16; ++attempt) {
      s.disc_x = static_cast<float>(r.uniform(0.15, 0.85));
      s.disc_y = static_cast<float>(r.uniform(0.08, std::max(0.1, s.horizon * 0.45)));
      const float dx = s.disc_x - s.obj_x, dy = (s.disc_y - s.obj_y) / aspect;
      if (std::sqrt(dx * dx + dy * dy) > half_w + 0.15f) break;
      s.disc_x = s.obj_x < 0.5f ? 0.82f : 0.18f;
    }
  }
  return s;
}

void sample_motion(Scene& s, uint64_t seed) {
  Rng r(mix_seed(seed, 0x307104));
  s.motion = {};
  const int kind = r.below(6);
  const float amount = static_cast<float>(r.uniform(0.0, 1.0));
  switch (kind) {
    case 0: s.motion.vx = (r.below(2) ? 1.f : -1.f) * (0.02f + 0.25f * amount); break;   // moving across
    case 1:                                                                              // bouncing / bobbing
      if (s.object == Object::Ball) {
        s.motion.bounce = 0.04f + 0.25f * amount;
        s.motion.bounce_period = static_cast<float>(r.uniform(0.6, 1.4));
      } else {
        s.motion.vy = -(0.02f + 0.15f * amount);
      }
      break;
    case 2: s.motion.vy = (s.object == Object::Kite ? -1.f : 1.f) * (0.02f + 0.15f * amount); break;  // rising / falling
    case 3: s.motion.pan = (r.below(2) ? 1.f : -1.f) * (0.01f + 0.12f * amount); break;
    case 4: s.motion.zoom = (r.below(2) ? 1.f : -1.f) * (0.01f + 0.10f * amount); break;
    default: s.motion.vx = (r.below(2) ? 1.f : -1.f) * 0.01f * amount; break;  // nearly still
  }
  if (s.clouds) s.motion.cloud_drift = static_cast<float>(r.uniform(0.01, 0.06));
}

Scene flipped(const Scene& scene) {
  Scene s = scene;
  s.obj_x = 1 - s.obj_x;
  s.disc_x = 1 - s.disc_x;
  s.motion.vx = -s.motion.vx;
  s.motion.pan = -s.motion.pan;
  s.motion.cloud_drift = -s.motion.cloud_drift;
  s.detail_seed = mix_seed(s.detail_seed, 1);
  return s;
}

Image render(const Scene& s, int w, int h, double t) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(static_cast<size_t>(w) * h * 3, 0);
  img.object_mask.assign(static_cast<size_t>(w) * h, 0);
  const float short_side = static_cast<float>(std::min(w, h));
  const float horizon_px = s.horizon * static_cast<float>(h);
  const auto sky = sky_gradient(s.sky);
  const auto ground = ground_gradient(s.ground);
  const float sky_gain = 1 + 0.06f * s.sky_jitter, ground_gain = 1 + 0.06f * s.ground_jitter;
  const Rgb obj = object_colour(s);
  const Placed p = place_object(s, w, h, t);
  const float zoom = 1 + s.motion.zoom * static_cast<float>(t);
  const float pan_px = s.motion.pan * static_cast<float>(t) * short_side;
  const float cxf = static_cast<float>(w) / 2, cyf = static_cast<float>(h) / 2;
  const float disc_r = short_side * (s.sun ? 0.075f : 0.06f);
  const Rgb disc_col = s.sun ? (s.sky == Sky::Sunset ? Rgb{255, 205, 110} : Rgb{255, 240, 150}) : Rgb{236, 236, 222};
  const Rgb cloud_col = cloud_colour(s.sky);
  const Rgb string_col{55, 55, 60};

  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      // Background coordinates: the camera zooms about the centre and pans; the object moves itself.
      const float fx = (static_cast<float>(x) + 0.5f - cxf) / zoom + cxf, fy = (static_cast<float>(y) + 0.5f - cyf) / zoom + cyf;
      const float bx = fx + pan_px;
      Rgb c;
      if (fy < horizon_px) {
        const float u = std::clamp(fy / horizon_px, 0.0f, 1.0f);
        c = scale(lerp(sky.a, sky.b, u), sky_gain);
        if (s.sky == Sky::Overcast) c = scale(c, 0.96f + 0.08f * value_noise(s.detail_seed, bx, fy, short_side * 0.2f));
        if (s.sky == Sky::Night) {
          const auto sx = static_cast<int64_t>(std::floor(bx)), sy = static_cast<int64_t>(std::floor(fy));
          const float hs = hash01(s.detail_seed ^ 0x57A4, sx, sy);
          if (hs < 0.006f && u < 0.85f) c = lerp(c, Rgb{230, 230, 240}, 0.5f + 60 * hs);
        }
        if (s.sun || s.moon) {
          const float ddx = bx - s.disc_x * static_cast<float>(w), ddy = fy - s.disc_y * static_cast<float>(h);
          const float d = std::sqrt(ddx * ddx + ddy * ddy);
          if (s.sun) c = lerp(c, disc_col, 0.35f * std::exp(-std::max(0.0f, d - disc_r) / (disc_r * 0.8f)));  // glow
          c = lerp(c, disc_col, coverage(d - disc_r));
        }
        if (s.clouds) c = lerp(c, cloud_col, 0.92f * coverage(cloud_distance(s, bx, fy, short_side, horizon_px, t)));
      } else {
        const float u = std::clamp((fy - horizon_px) / std::max(1.0f, static_cast<float>(h) - horizon_px), 0.0f, 1.0f);
        c = scale(lerp(ground.a, ground.b, u), ground_gain);
        float tex = 1;
        switch (s.ground) {
          case Ground::Grass: tex = 0.92f + 0.16f * value_noise(s.detail_seed, bx, fy, 2.5f); break;
          case Ground::Sand: tex = 0.96f + 0.08f * value_noise(s.detail_seed, bx * 0.5f, fy * 2, short_side * 0.15f); break;
          case Ground::Snow: tex = 0.98f + 0.03f * value_noise(s.detail_seed, bx, fy, short_side * 0.1f); break;
          case Ground::Sea:
            tex = 0.93f + 0.14f * (0.5f + 0.5f * std::sin(fy * 1.7f + 3 * value_noise(s.detail_seed, bx, fy, short_side * 0.25f)));
            break;
        }
        c = scale(c, tex);
      }
      // The object (and a kite's string) on top, in frame coordinates scaled by the zoom about the centre.
      const float ox = (static_cast<float>(x) + 0.5f - cxf) / zoom + cxf, oy = (static_cast<float>(y) + 0.5f - cyf) / zoom + cyf;
      if (s.object == Object::Kite) c = lerp(c, string_col, 0.8f * coverage(string_distance(p, ox, oy) - 0.35f));
      float shade = 1;
      const float cov = coverage(object_distance(s, p, ox, oy, shade) * zoom);
      if (cov > 0) c = lerp(c, scale(obj, shade), cov);
      const size_t i = static_cast<size_t>(y) * w + x;
      img.object_mask[i] = cov >= 0.5f ? 1 : 0;
      img.rgb[i * 3 + 0] = static_cast<uint8_t>(std::clamp(std::lround(c.r), 0L, 255L));
      img.rgb[i * 3 + 1] = static_cast<uint8_t>(std::clamp(std::lround(c.g), 0L, 255L));
      img.rgb[i * 3 + 2] = static_cast<uint8_t>(std::clamp(std::lround(c.b), 0L, 255L));
    }
  }
  return img;
}

bool object_visible(const Scene& s, const Image& image, int min_pixels) {
  if (image.object_pixels() < min_pixels) return false;
  const Placed p = place_object(s, image.width, image.height, 0);
  const float v = std::clamp(p.cy / static_cast<float>(image.height), 0.0f, 1.0f);
  Rgb bg;
  if (v < s.horizon) {
    const auto g = sky_gradient(s.sky);
    bg = lerp(g.a, g.b, v / s.horizon);
  } else {
    const auto g = ground_gradient(s.ground);
    bg = lerp(g.a, g.b, (v - s.horizon) / std::max(0.05f, 1 - s.horizon));
  }
  const Rgb o = object_colour(s);
  const float d = std::sqrt((o.r - bg.r) * (o.r - bg.r) + (o.g - bg.g) * (o.g - bg.g) + (o.b - bg.b) * (o.b - bg.b));
  return d >= 70.0f;
}

}  // namespace clipgen::scenes
