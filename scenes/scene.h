// The procedural scene generator: the built-in model's training data and its vocabulary.
//
// A Scene is a sky, a ground, one object (ball, box or kite) in one of eight colours, and extras (sun,
// moon, clouds) that appear only when the scene names them. Everything is a pure function of the
// Scene's fields: sample_scene(seed) draws the fields, render(scene, w, h, t) draws the frame at time t
// (seconds; the object and clouds move, the camera pans or zooms), and scenes::caption (caption.h)
// describes it in words. The same seed gives byte-identical frames on every build and machine (integer
// hashing and float arithmetic only; no library random generators).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace clipgen::scenes {

enum class Sky : uint8_t { Clear, Sunset, Night, Overcast };
enum class Ground : uint8_t { Grass, Sand, Snow, Sea };
enum class Object : uint8_t { Ball, Box, Kite };
enum class Colour : uint8_t { Red, Orange, Yellow, Green, Blue, Purple, White, Black };
inline constexpr int kSkies = 4, kGrounds = 4, kObjects = 3, kColours = 8;

const char* name(Sky s);
const char* name(Ground g);
const char* name(Object o);
const char* name(Colour c);

struct Rgb {
  float r = 0, g = 0, b = 0;  // 0..255
};
// The reference colour of each class (what the renderer jitters around and what the judge compares to).
Rgb reference(Colour c);
Rgb reference(Sky s);     // the sky's colour half-way between the top and the horizon
Rgb reference(Ground g);  // the ground's colour at the bottom of the frame

// How the scene moves in a clip (all zero: a still image).
struct Motion {
  float vx = 0, vy = 0;      // object velocity, frame short sides per second (+y is down)
  float bounce = 0;          // amplitude of a bouncing ball (short sides); period bounce_period
  float bounce_period = 1;   // seconds
  float cloud_drift = 0;     // short sides per second
  float pan = 0;             // camera pan, short sides per second (background moves, object stays)
  float zoom = 0;            // relative scale change per second (1 + zoom·t)
};

struct Scene {
  Sky sky = Sky::Clear;
  Ground ground = Ground::Grass;
  Object object = Object::Ball;
  Colour colour = Colour::Red;
  bool sun = false, moon = false, clouds = false;
  float horizon = 0.65f;      // fraction of the height where the ground starts
  float obj_x = 0.5f;         // object centre, fraction of the width
  float obj_y = 0.5f;         // object centre, fraction of the height
  float obj_size = 0.2f;      // object width, fraction of the frame's short side (10–35 %)
  float disc_x = 0.75f, disc_y = 0.2f;  // sun / moon centre (fractions)
  std::array<float, 3> jitter{};        // colour jitter of the object (−1..1 per channel, kept inside the class)
  float sky_jitter = 0, ground_jitter = 0;  // brightness jitter of the background (−1..1)
  uint64_t detail_seed = 0;   // stars, cloud shapes, ground texture
  Motion motion;
};

// Draws a scene uniformly over the vocabulary (extras each with probability 1/4, only where they fit the
// sky: the sun by day or at sunset, the moon at night or by day, clouds in any sky but overcast), placing
// the object where it belongs (a box on the ground, a kite in the sky, a ball on the ground or in the air).
Scene sample_scene(uint64_t seed);

// Adds a motion to the scene (for clips), deterministic in the seed: the object moving, bouncing,
// rising or falling, clouds drifting, a slow pan or zoom.
void sample_motion(Scene& scene, uint64_t seed);

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;          // packed RGB24, row-major
  std::vector<uint8_t> object_mask;  // 1 where the object covers at least half a pixel
  int object_pixels() const;
};

// Renders the scene at time t (seconds) at width × height (any aspect; sizes are relative to the short side).
Image render(const Scene& scene, int width, int height, double t = 0);

// Mirror image of the scene (positions flipped left–right): a caption-preserving augmentation.
Scene flipped(const Scene& scene);

// Whether the object can be seen: at least `min_pixels` of it inside the frame and its colour far enough
// from the background it stands on (a white ball on snow, a black kite in the night sky are not).
bool object_visible(const Scene& scene, const Image& image, int min_pixels = 12);

// Small deterministic hash RNG (splitmix64), shared by the generator and its callers.
class Rng {
public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next();
  double uniform();                     // [0, 1)
  double uniform(double lo, double hi);
  int below(int n);                     // [0, n)
private:
  uint64_t s_;
};
uint64_t mix_seed(uint64_t a, uint64_t b);

}  // namespace clipgen::scenes
