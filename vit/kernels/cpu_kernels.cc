// vit-paddle's fused CPU kernels, built by vit/kernels/build.py with Paddle's custom-operator
// toolchain. Each does in one operation what Paddle's own CPU kernels do in several passes or
// operations (attention, linear, layer norm) or slowly on one thread (GELU); see
// docs/performance.md.
//
//   vit_attention(qkv; heads, scale, threads) -> out       [B, N, 3D] -> [B, N, D]   (MKL)
//   vit_attention_keeping_softmax(qkv; ...) -> out, probabilities [B, H, N, N]      (MKL)
//   vit_linear(x, weight, bias; want_x, want_weight, threads) -> x weight + bias    (MKL)
//   vit_layer_norm(x, weight, bias; epsilon, threads) -> y   over the last axis
//   vit_gelu(x; threads) -> y                     the exact GELU, x * Phi(x)
//   vit_drop_path(x, uniform; keep, threads) -> y  stochastic depth, per sample of x
//
// Each op but vit_attention has its gradient registered with it (PD_BUILD_GRAD_OP, the op's
// name + "_grad"; its second derivative is an error), so Paddle's autograd runs it in C++:
// through a Python PyLayer each op cost ~30 us more, forward and backward, and the default
// model's training step took 20.2 ms against 16.1. float32 on the CPU; the Python side passes
// contiguous tensors. The (MKL) ones exist only where the library is built with Paddle's MKL
// (VIT_WITH_MKL).

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "paddle/extension.h"

#ifdef VIT_WITH_MKL
// The MKL that Paddle ships (libmklml_intel.so, linked by vit/kernels/build.py where it exists):
// its matrix products are the ones Paddle's matmul runs, called here on one head at a time.
extern "C" {
void cblas_sgemm(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
int MKL_Set_Num_Threads_Local(int threads);  // mkl_service.h's C name
}
#endif

// One copy of each kernel per instruction set, chosen when the library loads, so a library
// built on one machine runs on any x86-64 CPU and uses AVX2 or AVX-512 where they exist.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VIT_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VIT_VECTOR_CLONES
#endif

namespace {

// Below this many elements a second thread costs more than it saves.
constexpr int64_t kElementsPerThread = 1 << 14;

// Paddle's OpenMP runtime (the libiomp5 its MKL runs on), where this process has it: its
// workers are the threads that spin after each of MKL's matrix products, so parallel work
// handed to them runs at once instead of sharing a core with a spinning thread, and no thread
// is started per call. Found at run time because Paddle loads it privately; elsewhere
// std::thread runs the parts.
struct OpenMpRuntime {
  void (*parallel)(void (*)(void*), void*, unsigned, unsigned) = nullptr;  // GOMP_parallel
  int (*thread_num)() = nullptr;
  int (*num_threads)() = nullptr;
};

const OpenMpRuntime& PaddlesOpenMp() {
  static const OpenMpRuntime runtime = [] {
    OpenMpRuntime found;
    void* library = dlopen("libiomp5.so", RTLD_LAZY | RTLD_NOLOAD);
    if (library == nullptr) return found;
    found.parallel = reinterpret_cast<decltype(found.parallel)>(dlsym(library, "GOMP_parallel"));
    found.thread_num = reinterpret_cast<int (*)()>(dlsym(library, "omp_get_thread_num"));
    found.num_threads = reinterpret_cast<int (*)()>(dlsym(library, "omp_get_num_threads"));
    if (!found.thread_num || !found.num_threads) found.parallel = nullptr;
    return found;
  }();
  return runtime;
}

template <typename Body>
struct PartsJob {
  const Body* body;
  int64_t rows, step, parts;
  const OpenMpRuntime* runtime;

  static void Run(void* data) {
    const auto& job = *static_cast<const PartsJob*>(data);
    // the team may be smaller than asked for: each member takes every team-size-th part
    const int64_t team = job.runtime->num_threads();
    for (int64_t part = job.runtime->thread_num(); part < job.parts; part += team)
      (*job.body)(part * job.step, std::min(job.rows, (part + 1) * job.step), part);
  }
};

// Runs body(first_row, end_row, part) over `rows` split into up to `threads` parts.
template <typename Body>
void ParallelRows(int64_t rows, int64_t width, int64_t threads, const Body& body) {
  const int64_t wanted = std::max<int64_t>(1, rows * width / kElementsPerThread);
  const int64_t parts = std::max<int64_t>(1, std::min({threads, wanted, rows}));
  if (parts == 1) {
    body(0, rows, 0);
    return;
  }
  const int64_t step = (rows + parts - 1) / parts;
  const OpenMpRuntime& runtime = PaddlesOpenMp();
  if (runtime.parallel != nullptr) {
    PartsJob<Body> job{&body, rows, step, parts, &runtime};
    runtime.parallel(&PartsJob<Body>::Run, &job, static_cast<unsigned>(parts), 0);
    return;
  }
  std::vector<std::thread> workers;
  for (int64_t part = 1; part < parts; ++part) {
    const int64_t first = part * step, end = std::min(rows, first + step);
    workers.emplace_back([&body, first, end, part] { body(first, end, part); });
  }
  body(0, std::min(rows, step), 0);
  for (auto& worker : workers) worker.join();
}

// exp(x) for x <= 0 (softmax's shifted scores), vectorisable: Cephes' expf, 2^n times a
// degree-7 polynomial of the remainder; about one float ulp. Below -87 it returns
// exp(-87) ~ 1.6e-38 instead of a subnormal, far below the row maximum's exp(0) = 1.
inline float ExpNonPositive(float x) {
  x = std::max(x, -87.0f);
  const float rounder = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds
  const float n = (x * 1.44269504088896341f + rounder) - rounder;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// exp(-x^2 / 2), and 0 where it is below float's range (ExpNonPositive stops at exp(-87)).
inline float HalfGaussian(float x) {
  const float square = 0.5f * x * x;
  return square < 87.0f ? ExpNonPositive(-square) : 0.0f;
}

// Phi(x), the standard normal CDF, as (1 + erf(x / sqrt 2)) / 2 with Abramowitz and Stegun's
// erf 7.1.26 (absolute error below 1.5e-7), vectorisable; `gaussian` is HalfGaussian(x).
inline float NormalCdf(float x, float gaussian) {
  const float t = 1.0f / (1.0f + 0.3275911f * 0.70710678118654752f * std::fabs(x));
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float erf_abs = 1.0f - p * t * gaussian;
  return 0.5f + 0.5f * (x < 0.0f ? -erf_abs : erf_abs);
}

VIT_VECTOR_CLONES
void GeluRange(const float* x, float* y, int64_t first, int64_t end) {
#pragma omp simd
  for (int64_t i = first; i < end; ++i) y[i] = x[i] * NormalCdf(x[i], HalfGaussian(x[i]));
}

// d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
VIT_VECTOR_CLONES
void GeluBackwardRange(const float* x, const float* grad, float* d_x, int64_t first,
                       int64_t end) {
#pragma omp simd
  for (int64_t i = first; i < end; ++i) {
    const float gaussian = HalfGaussian(x[i]);
    d_x[i] = grad[i] * (NormalCdf(x[i], gaussian) + x[i] * gaussian * 0.39894228040143268f);
  }
}

// out[i] = x[i] * factor for i < size
VIT_VECTOR_CLONES
void ScaleRange(const float* x, float factor, int64_t size, float* out) {
#pragma omp simd
  for (int64_t i = 0; i < size; ++i) out[i] = x[i] * factor;
}

VIT_VECTOR_CLONES
void SoftmaxRows(const float* x, float* y, int64_t first, int64_t end, int64_t width) {
  for (int64_t i = first; i < end; ++i) {
    const float* in = x + i * width;
    float* out = y + i * width;
    float top = in[0];
    // a comparison, not std::max, whose NaN rule kept gcc from vectorising the loop
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < width; ++j) top = in[j] > top ? in[j] : top;
    // a loop of its own: gcc vectorises the exponential only without the sum beside it; `omp
    // simd` because `in` may be `out` (the attention's softmax is in place), which would
    // otherwise send it to a scalar copy of the loop
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) out[j] = ExpNonPositive(in[j] - top);
    float total = 0.0f;
#pragma omp simd reduction(+ : total)
    for (int64_t j = 0; j < width; ++j) total += out[j];
    const float inverse = 1.0f / total;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) out[j] *= inverse;
  }
}

// d_x = y * (grad - sum(grad * y)) over each row.
VIT_VECTOR_CLONES
void SoftmaxBackwardRows(const float* y, const float* grad, float* d_x, int64_t first,
                         int64_t end, int64_t width) {
  for (int64_t i = first; i < end; ++i) {
    const float* y_row = y + i * width;
    const float* grad_row = grad + i * width;
    float* d_x_row = d_x + i * width;
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < width; ++j) dot += grad_row[j] * y_row[j];
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) d_x_row[j] = y_row[j] * (grad_row[j] - dot);
  }
}

// A row's mean and 1 / sqrt(variance + epsilon), in two passes (the variance from the
// centred values, as Paddle's layer norm computes it).
struct RowStatistics {
  float mean, inv_std;

  RowStatistics(const float* row, int64_t width, float epsilon) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < width; ++j) sum += row[j];
    mean = sum / width;
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int64_t j = 0; j < width; ++j) {
      const float centred = row[j] - mean;
      squares += centred * centred;
    }
    inv_std = 1.0f / std::sqrt(squares / width + epsilon);
  }
};

// y = (x - mean) / std * weight + bias over rows [first, end)
VIT_VECTOR_CLONES
void LayerNormRows(const float* x, const float* weight, const float* bias, int64_t first,
                   int64_t end, int64_t width, float epsilon, float* y) {
  for (int64_t i = first; i < end; ++i) {
    const float* x_row = x + i * width;
    float* y_row = y + i * width;
    const RowStatistics row(x_row, width, epsilon);
#pragma omp simd
    for (int64_t j = 0; j < width; ++j)
      y_row[j] = (x_row[j] - row.mean) * row.inv_std * weight[j] + bias[j];
  }
}

// The layer-norm gradient of rows [first, end), with n = (x - mean) / std and s = grad * w:
//   d_x = (s - mean(s) - n * mean(s * n)) / std,  d_weight += grad * n,  d_bias += grad.
// Mean and std are recomputed from x, as the forward computed them.
VIT_VECTOR_CLONES
void LayerNormBackwardRows(const float* grad, const float* x, const float* weight,
                           int64_t first, int64_t end, int64_t width, float epsilon,
                           float* d_x, float* d_weight, float* d_bias) {
  std::vector<float> normed(width);
  float* n = normed.data();
  for (int64_t i = first; i < end; ++i) {
    const float* x_row = x + i * width;
    const float* grad_row = grad + i * width;
    float* d_x_row = d_x + i * width;
    const RowStatistics row(x_row, width, epsilon);
    const float mean = row.mean, inv_std = row.inv_std;
    float scaled_sum = 0.0f, scaled_normed_sum = 0.0f;
#pragma omp simd reduction(+ : scaled_sum, scaled_normed_sum)
    for (int64_t j = 0; j < width; ++j) {
      n[j] = (x_row[j] - mean) * inv_std;
      const float scaled = grad_row[j] * weight[j];
      scaled_sum += scaled;
      scaled_normed_sum += scaled * n[j];
      d_weight[j] += grad_row[j] * n[j];
      d_bias[j] += grad_row[j];
    }
    const float scaled_mean = scaled_sum / width;
    const float scaled_normed_mean = scaled_normed_sum / width;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j)
      d_x_row[j] = inv_std * (grad_row[j] * weight[j] - scaled_mean - n[j] * scaled_normed_mean);
  }
}

// sums[j] += the sum over `rows` rows of matrix[i][j]
VIT_VECTOR_CLONES
void ColumnSums(const float* matrix, int64_t rows, int64_t width, float* sums) {
  for (int64_t i = 0; i < rows; ++i) {
    const float* row = matrix + i * width;
#pragma omp simd
    for (int64_t j = 0; j < width; ++j) sums[j] += row[j];
  }
}

// Sums of `width` numbers that each part of a ParallelRows job adds into its own row, added
// up at the end. Each row starts at least a cache line after the previous one ends: threads
// adding into neighbouring rows on a shared line took it from each other on every row they
// summed (the layer-norm gradient of the default model's batch took 1.5x its one-thread time
// on two threads).
class PartSums {
 public:
  static constexpr int64_t kLine = 64 / sizeof(float);

  PartSums(int64_t parts, int64_t width)
      : parts_(parts), width_(width), stride_((width + 2 * kLine - 1) / kLine * kLine),
        sums_(parts * stride_, 0.0f) {}
  float* part(int64_t index) { return sums_.data() + index * stride_; }
  // out = the parts' rows added in order
  void AddUp(float* out) const {
    std::fill(out, out + width_, 0.0f);
    for (int64_t index = 0; index < parts_; ++index)
      ColumnSums(sums_.data() + index * stride_, 1, width_, out);
  }

 private:
  int64_t parts_, width_, stride_;
  std::vector<float> sums_;
};

int64_t Width(const paddle::Tensor& x) { return x.shape().empty() ? 1 : x.shape().back(); }

void CheckFloatOnCpu(const paddle::Tensor& x, const char* name) {
  PD_CHECK(x.is_cpu(), name, " must be on the CPU");
  PD_CHECK(x.dtype() == paddle::DataType::FLOAT32, name, " must be float32");
}

#ifdef VIT_WITH_MKL
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

// C = alpha op(A) op(B) + beta C, row-major, with leading dimensions.
void Gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
          float beta = 0.0f) {
  cblas_sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// One thread's MKL runs on that thread alone while this is alive: the parts of a kernel run
// side by side and each calls MKL.
class SingleThreadedMkl {
 public:
  SingleThreadedMkl() : previous_(MKL_Set_Num_Threads_Local(1)) {}
  ~SingleThreadedMkl() { MKL_Set_Num_Threads_Local(previous_); }

 private:
  int previous_;
};

// The shape of a fused query/key/value tensor [B, N, 3 * D], D = heads * head_dim, and where
// head h of image b has its queries, keys and values (each N x head_dim, row stride 3 D).
struct HeadLayout {
  int64_t batch, tokens, dim, heads, head_dim;

  HeadLayout(const paddle::Tensor& qkv, int64_t num_heads) {
    const auto& shape = qkv.shape();
    PD_CHECK(shape.size() == 3 && shape[2] % (3 * num_heads) == 0,
             "qkv must be [batch, tokens, 3 * heads * head_dim]");
    batch = shape[0], tokens = shape[1], dim = shape[2] / 3, heads = num_heads;
    head_dim = dim / heads;
  }
  int64_t qkv_stride() const { return 3 * dim; }
  // offset of head `task` (= b * heads + h) in qkv, of `which` (0 q, 1 k, 2 v)
  int64_t in(int64_t task, int which) const {
    return (task / heads) * tokens * 3 * dim + which * dim + (task % heads) * head_dim;
  }
  // offset of head `task` in a [B, N, D] tensor (the output and its gradient)
  int64_t out(int64_t task) const {
    return (task / heads) * tokens * dim + (task % heads) * head_dim;
  }
};

// Rows of queries per piece of work: their scores (rows x N) stay in the core's cache between
// the two products.
constexpr int64_t kQueryRows = 128;

// softmax(scale q k^T) v for each head, written as [B, N, D]; with `probabilities` (a
// [B, H, N, N] buffer) the softmax is kept there for the gradient.
void AttentionForward(const float* qkv, const HeadLayout& at, float scale, int64_t threads,
                      float* out, float* probabilities) {
  const int64_t n = at.tokens, tiles = (n + kQueryRows - 1) / kQueryRows;
  const int64_t stride = at.qkv_stride();
  ParallelRows(at.batch * at.heads * tiles, kQueryRows * n, threads,
               [&](int64_t first, int64_t end, int64_t) {
    SingleThreadedMkl single;
    std::vector<float> scratch(probabilities ? 0 : kQueryRows * n);
    for (int64_t work = first; work < end; ++work) {
      const int64_t task = work / tiles, row = (work % tiles) * kQueryRows;
      const int64_t rows = std::min(kQueryRows, n - row);
      float* scores = probabilities ? probabilities + (task * n + row) * n : scratch.data();
      Gemm(false, true, rows, n, at.head_dim, scale, qkv + at.in(task, 0) + row * stride, stride,
           qkv + at.in(task, 1), stride, scores, n);
      SoftmaxRows(scores, scores, 0, rows, n);
      Gemm(false, false, rows, at.head_dim, n, 1.0f, scores, n, qkv + at.in(task, 2), stride,
           out + at.out(task) + row * at.dim, at.dim);
    }
  });
}

// The gradient of AttentionForward with respect to qkv, from its kept softmax P:
//   dV = P^T dO,  dS = P * (dO V^T - rowsum(P * dO V^T)),  dQ = scale dS K,  dK = scale dS^T Q.
void AttentionBackward(const float* qkv, const float* probabilities, const float* grad,
                       const HeadLayout& at, float scale, int64_t threads, float* d_qkv) {
  const int64_t n = at.tokens, stride = at.qkv_stride();
  ParallelRows(at.batch * at.heads, n * n, threads, [&](int64_t first, int64_t end, int64_t) {
    SingleThreadedMkl single;
    std::vector<float> d_scores(n * n);
    for (int64_t task = first; task < end; ++task) {
      const float* p = probabilities + task * n * n;
      const float* d_out = grad + at.out(task);
      Gemm(true, false, n, at.head_dim, n, 1.0f, p, n, d_out, at.dim, d_qkv + at.in(task, 2),
           stride);
      Gemm(false, true, n, n, at.head_dim, 1.0f, d_out, at.dim, qkv + at.in(task, 2), stride,
           d_scores.data(), n);
      SoftmaxBackwardRows(p, d_scores.data(), d_scores.data(), 0, n, n);
      Gemm(false, false, n, at.head_dim, n, scale, d_scores.data(), n, qkv + at.in(task, 1),
           stride, d_qkv + at.in(task, 0), stride);
      Gemm(true, false, n, at.head_dim, n, scale, d_scores.data(), n, qkv + at.in(task, 0),
           stride, d_qkv + at.in(task, 1), stride);
    }
  });
}
#endif

}  // namespace

std::vector<paddle::Tensor> LayerNorm(const paddle::Tensor& x, const paddle::Tensor& weight,
                                      const paddle::Tensor& bias, float epsilon,
                                      int64_t threads) {
  CheckFloatOnCpu(x, "x");
  CheckFloatOnCpu(weight, "weight");
  CheckFloatOnCpu(bias, "bias");
  const int64_t width = Width(x), rows = x.numel() / width;
  PD_CHECK(weight.numel() == width && bias.numel() == width, "x, weight and bias do not match");
  auto y = paddle::empty(x.shape(), x.dtype(), x.place());
  ParallelRows(rows, width, threads, [&](int64_t first, int64_t end, int64_t) {
    LayerNormRows(x.data<float>(), weight.data<float>(), bias.data<float>(), first, end, width,
                  epsilon, y.data<float>());
  });
  return {y};
}

std::vector<paddle::Tensor> LayerNormBackward(const paddle::Tensor& grad, const paddle::Tensor& x,
                                              const paddle::Tensor& weight, float epsilon,
                                              int64_t threads) {
  CheckFloatOnCpu(grad, "grad");
  CheckFloatOnCpu(x, "x");
  CheckFloatOnCpu(weight, "weight");
  const int64_t width = Width(x), rows = x.numel() / width;
  PD_CHECK(grad.numel() == x.numel() && weight.numel() == width,
           "grad, x and weight do not match");
  auto d_x = paddle::empty(x.shape(), x.dtype(), x.place());
  // each part sums its own rows' d_weight and d_bias; the parts are added at the end
  const int64_t parts = std::max<int64_t>(1, threads);
  PartSums weight_sums(parts, width), bias_sums(parts, width);
  ParallelRows(rows, width, threads, [&](int64_t first, int64_t end, int64_t part) {
    LayerNormBackwardRows(grad.data<float>(), x.data<float>(), weight.data<float>(), first, end,
                          width, epsilon, d_x.data<float>(), weight_sums.part(part),
                          bias_sums.part(part));
  });
  auto d_weight = paddle::empty({width}, x.dtype(), x.place());
  auto d_bias = paddle::empty({width}, x.dtype(), x.place());
  weight_sums.AddUp(d_weight.data<float>());
  bias_sums.AddUp(d_bias.data<float>());
  return {d_x, d_weight, d_bias};
}

// element-wise: the rows are the flat tensor cut into pieces of `kElementsPerThread`
std::vector<paddle::Tensor> Gelu(const paddle::Tensor& x, int64_t threads) {
  CheckFloatOnCpu(x, "x");
  auto y = paddle::empty(x.shape(), x.dtype(), x.place());
  const int64_t size = x.numel();
  ParallelRows(size, 1, threads, [&](int64_t first, int64_t end, int64_t) {
    GeluRange(x.data<float>(), y.data<float>(), first, end);
  });
  return {y};
}

std::vector<paddle::Tensor> GeluBackward(const paddle::Tensor& x, const paddle::Tensor& grad,
                                         int64_t threads) {
  CheckFloatOnCpu(x, "x");
  CheckFloatOnCpu(grad, "grad");
  PD_CHECK(grad.numel() == x.numel(), "grad and x do not match");
  auto d_x = paddle::empty(x.shape(), x.dtype(), x.place());
  ParallelRows(x.numel(), 1, threads, [&](int64_t first, int64_t end, int64_t) {
    GeluBackwardRange(x.data<float>(), grad.data<float>(), d_x.data<float>(), first, end);
  });
  return {d_x};
}

// Stochastic depth: sample b of x [B, ...] times floor(keep + uniform[b]) / keep, that is
// 1 / keep (kept) or 0 (dropped), uniform[b] drawn from [0, 1) by Paddle. Its gradient is the
// same product of the output's gradient.
std::vector<paddle::Tensor> DropPath(const paddle::Tensor& x, const paddle::Tensor& uniform,
                                     float keep, int64_t threads) {
  CheckFloatOnCpu(x, "x");
  CheckFloatOnCpu(uniform, "uniform");
  const int64_t samples = x.shape().empty() ? 1 : x.shape()[0];
  PD_CHECK(uniform.numel() == samples, "uniform must hold one number per sample of x");
  const int64_t size = samples == 0 ? 0 : x.numel() / samples;
  auto y = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* in = x.data<float>();
  const float* drawn = uniform.data<float>();
  float* out = y.data<float>();
  ParallelRows(samples, size, threads, [&](int64_t first, int64_t end, int64_t) {
    for (int64_t b = first; b < end; ++b) {
      const float factor = std::floor(keep + drawn[b]) / keep;
      ScaleRange(in + b * size, factor, size, out + b * size);
    }
  });
  return {y};
}

#ifdef VIT_WITH_MKL
// x W + b for x [..., in], W [in, out]: the bias is copied into each output row and MKL's
// product (on all of its threads) adds to it, where Paddle's linear adds a broadcast bias in a
// second, single-threaded pass over the output. want_x and want_weight are for the gradient.
std::vector<paddle::Tensor> Linear(const paddle::Tensor& x, const paddle::Tensor& weight,
                                   const paddle::Tensor& bias, bool /*want_x*/,
                                   bool /*want_weight*/, int64_t threads) {
  CheckFloatOnCpu(x, "x");
  CheckFloatOnCpu(weight, "weight");
  CheckFloatOnCpu(bias, "bias");
  const auto& shape = weight.shape();
  PD_CHECK(shape.size() == 2 && Width(x) == shape[0] && bias.numel() == shape[1],
           "x, weight and bias do not match");
  const int64_t inputs = shape[0], outputs = shape[1], rows = x.numel() / inputs;
  auto out_shape = x.shape();
  out_shape.back() = outputs;
  auto out = paddle::empty(out_shape, x.dtype(), x.place());
  float* out_data = out.data<float>();
  const float* bias_data = bias.data<float>();
  ParallelRows(rows, outputs, threads, [&](int64_t first, int64_t end, int64_t) {
    for (int64_t row = first; row < end; ++row)
      std::memcpy(out_data + row * outputs, bias_data, outputs * sizeof(float));
  });
  if (rows > 0)
    Gemm(false, false, rows, outputs, inputs, 1.0f, x.data<float>(), inputs, weight.data<float>(),
         outputs, out_data, outputs, 1.0f);
  return {out};
}

// The gradient of x W + b: d_x = grad W^T and d_weight = x^T grad (each only where asked
// for: a frozen layer's weight or the head's input behind a frozen backbone needs none; an
// empty tensor stands in, which Paddle drops as it does every gradient of a tensor that does
// not learn), d_bias = column sums.
std::vector<paddle::Tensor> LinearBackward(const paddle::Tensor& x, const paddle::Tensor& weight,
                                           const paddle::Tensor& grad, bool want_x,
                                           bool want_weight, int64_t threads) {
  CheckFloatOnCpu(x, "x");
  CheckFloatOnCpu(weight, "weight");
  CheckFloatOnCpu(grad, "grad");
  const auto& shape = weight.shape();
  PD_CHECK(shape.size() == 2 && Width(x) == shape[0] && Width(grad) == shape[1] &&
               x.numel() / shape[0] == grad.numel() / shape[1],
           "x, weight and grad do not match");
  const int64_t inputs = shape[0], outputs = shape[1], rows = x.numel() / inputs;
  auto d_x = paddle::empty(want_x ? x.shape() : std::vector<int64_t>{0}, x.dtype(), x.place());
  auto d_weight = paddle::empty(want_weight ? shape : std::vector<int64_t>{0}, x.dtype(),
                                x.place());
  auto d_bias = paddle::empty({outputs}, x.dtype(), x.place());
  const float* grad_data = grad.data<float>();
  if (want_x && rows > 0)
    Gemm(false, true, rows, inputs, outputs, 1.0f, grad_data, outputs, weight.data<float>(),
         outputs, d_x.data<float>(), inputs);
  if (want_weight)
    Gemm(true, false, inputs, outputs, rows, 1.0f, x.data<float>(), inputs, grad_data, outputs,
         d_weight.data<float>(), outputs);
  // d_bias: each part sums its rows' columns, and the parts are added
  PartSums bias_sums(std::max<int64_t>(1, threads), outputs);
  ParallelRows(rows, outputs, threads, [&](int64_t first, int64_t end, int64_t part) {
    ColumnSums(grad_data + first * outputs, end - first, outputs, bias_sums.part(part));
  });
  bias_sums.AddUp(d_bias.data<float>());
  return {d_x, d_weight, d_bias};
}

std::vector<std::vector<int64_t>> LinearShape(const std::vector<int64_t>& x,
                                              const std::vector<int64_t>& weight,
                                              const std::vector<int64_t>&) {
  auto out = x;
  out.back() = weight.back();
  return {out};
}

// Multi-head attention from the fused projection qkv [B, N, 3 D] to [B, N, D] (before the
// output projection), for inference: no softmax is kept.
std::vector<paddle::Tensor> Attention(const paddle::Tensor& qkv, int64_t heads, float scale,
                                      int64_t threads) {
  CheckFloatOnCpu(qkv, "qkv");
  const HeadLayout at(qkv, heads);
  auto out = paddle::empty({at.batch, at.tokens, at.dim}, qkv.dtype(), qkv.place());
  AttentionForward(qkv.data<float>(), at, scale, threads, out.data<float>(), nullptr);
  return {out};
}

// The same for training: also the softmax [B, H, N, N], which the gradient needs.
std::vector<paddle::Tensor> AttentionKeepingSoftmax(const paddle::Tensor& qkv, int64_t heads,
                                                    float scale, int64_t threads) {
  CheckFloatOnCpu(qkv, "qkv");
  const HeadLayout at(qkv, heads);
  auto out = paddle::empty({at.batch, at.tokens, at.dim}, qkv.dtype(), qkv.place());
  auto probabilities = paddle::empty({at.batch, at.heads, at.tokens, at.tokens}, qkv.dtype(),
                                     qkv.place());
  AttentionForward(qkv.data<float>(), at, scale, threads, out.data<float>(),
                   probabilities.data<float>());
  return {out, probabilities};
}

std::vector<paddle::Tensor> AttentionBackwardOp(const paddle::Tensor& qkv,
                                                const paddle::Tensor& probabilities,
                                                const paddle::Tensor& grad, int64_t heads,
                                                float scale, int64_t threads) {
  CheckFloatOnCpu(qkv, "qkv");
  CheckFloatOnCpu(probabilities, "probabilities");
  CheckFloatOnCpu(grad, "grad");
  const HeadLayout at(qkv, heads);
  PD_CHECK(grad.numel() == at.batch * at.tokens * at.dim &&
               probabilities.numel() == at.batch * at.heads * at.tokens * at.tokens,
           "qkv, probabilities and grad do not match");
  auto d_qkv = paddle::empty(qkv.shape(), qkv.dtype(), qkv.place());
  AttentionBackward(qkv.data<float>(), probabilities.data<float>(), grad.data<float>(), at,
                    scale, threads, d_qkv.data<float>());
  return {d_qkv};
}

std::vector<std::vector<int64_t>> AttentionShape(const std::vector<int64_t>& qkv) {
  return {{qkv[0], qkv[1], qkv[2] / 3}};
}
std::vector<std::vector<int64_t>> AttentionKeepingSoftmaxShape(const std::vector<int64_t>& qkv,
                                                               int64_t heads) {
  return {{qkv[0], qkv[1], qkv[2] / 3}, {qkv[0], heads, qkv[1], qkv[1]}};
}
std::vector<paddle::DataType> TwiceFirstDtype(const paddle::DataType& x) { return {x, x}; }
#endif

std::vector<std::vector<int64_t>> FirstOfThreeShape(const std::vector<int64_t>& x,
                                                    const std::vector<int64_t>&,
                                                    const std::vector<int64_t>&) {
  return {x};
}
std::vector<paddle::DataType> FirstOfThreeDtype(const paddle::DataType& x, const paddle::DataType&,
                                                const paddle::DataType&) {
  return {x};
}
std::vector<std::vector<int64_t>> FirstOfTwoShape(const std::vector<int64_t>& x,
                                                  const std::vector<int64_t>&) {
  return {x};
}
std::vector<paddle::DataType> FirstOfTwoDtype(const paddle::DataType& x, const paddle::DataType&) {
  return {x};
}
std::vector<std::vector<int64_t>> SameShape(const std::vector<int64_t>& x) { return {x}; }
std::vector<paddle::DataType> SameDtype(const paddle::DataType& x) { return {x}; }

// Each op's gradient is a first derivative, and its second is registered as an error: without
// it Paddle would record no graph through the gradient, and `paddle.grad(..., create_graph=True)`
// would return gradients whose own gradients silently lack the kernels' terms.
std::vector<paddle::Tensor> NoSecondDerivative(const paddle::Tensor&) {
  PD_THROW("vit's fused CPU kernels have first derivatives only: a gradient of a gradient "
           "(create_graph=True) cannot pass through them, nor through Paddle's own CPU layer "
           "norm");
}
#define VIT_NO_SECOND_DERIVATIVE(op, input, output)               \
  PD_BUILD_DOUBLE_GRAD_OP(op)                                     \
      .Inputs({paddle::Grad(paddle::Grad(input))})                \
      .Outputs({paddle::Grad(paddle::Grad(output))})              \
      .SetKernelFn(PD_KERNEL(NoSecondDerivative))

// A gradient op's kernel takes its inputs in the order listed and the forward op's attributes
// (PD_BUILD_GRAD_OP names it `<op>_grad`; no other op name may end in "_grad").
PD_BUILD_OP(vit_layer_norm)
    .Inputs({"X", "Weight", "Bias"})
    .Outputs({"Y"})
    .Attrs({"epsilon: float", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(LayerNorm))
    .SetInferShapeFn(PD_INFER_SHAPE(FirstOfThreeShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(FirstOfThreeDtype));

PD_BUILD_GRAD_OP(vit_layer_norm)
    .Inputs({paddle::Grad("Y"), "X", "Weight"})
    .Outputs({paddle::Grad("X"), paddle::Grad("Weight"), paddle::Grad("Bias")})
    .Attrs({"epsilon: float", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(LayerNormBackward));

VIT_NO_SECOND_DERIVATIVE(vit_layer_norm, "X", "Y");

PD_BUILD_OP(vit_gelu)
    .Inputs({"X"})
    .Outputs({"Y"})
    .Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(Gelu))
    .SetInferShapeFn(PD_INFER_SHAPE(SameShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(SameDtype));

PD_BUILD_GRAD_OP(vit_gelu)
    .Inputs({"X", paddle::Grad("Y")})
    .Outputs({paddle::Grad("X")})
    .Attrs({"threads: int64_t"})
    .SetKernelFn(PD_KERNEL(GeluBackward));

VIT_NO_SECOND_DERIVATIVE(vit_gelu, "X", "Y");

PD_BUILD_OP(vit_drop_path)
    .Inputs({"X", "Uniform"})
    .Outputs({"Y"})
    .Attrs({"keep: float", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(DropPath))
    .SetInferShapeFn(PD_INFER_SHAPE(FirstOfTwoShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(FirstOfTwoDtype));

PD_BUILD_GRAD_OP(vit_drop_path)
    .Inputs({paddle::Grad("Y"), "Uniform"})
    .Outputs({paddle::Grad("X")})
    .Attrs({"keep: float", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(DropPath));

VIT_NO_SECOND_DERIVATIVE(vit_drop_path, "X", "Y");

#ifdef VIT_WITH_MKL
PD_BUILD_OP(vit_linear)
    .Inputs({"X", "Weight", "Bias"})
    .Outputs({"Out"})
    .Attrs({"want_x: bool", "want_weight: bool", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(Linear))
    .SetInferShapeFn(PD_INFER_SHAPE(LinearShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(FirstOfThreeDtype));

PD_BUILD_GRAD_OP(vit_linear)
    .Inputs({"X", "Weight", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Weight"), paddle::Grad("Bias")})
    .Attrs({"want_x: bool", "want_weight: bool", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(LinearBackward));

VIT_NO_SECOND_DERIVATIVE(vit_linear, "X", "Out");

PD_BUILD_OP(vit_attention)
    .Inputs({"QKV"})
    .Outputs({"Out"})
    .Attrs({"heads: int64_t", "scale: float", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(Attention))
    .SetInferShapeFn(PD_INFER_SHAPE(AttentionShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(SameDtype));

PD_BUILD_OP(vit_attention_keeping_softmax)
    .Inputs({"QKV"})
    .Outputs({"Out", "Probabilities"})
    .Attrs({"heads: int64_t", "scale: float", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(AttentionKeepingSoftmax))
    .SetInferShapeFn(PD_INFER_SHAPE(AttentionKeepingSoftmaxShape))
    .SetInferDtypeFn(PD_INFER_DTYPE(TwiceFirstDtype));

PD_BUILD_GRAD_OP(vit_attention_keeping_softmax)
    .Inputs({"QKV", "Probabilities", paddle::Grad("Out")})
    .Outputs({paddle::Grad("QKV")})
    .Attrs({"heads: int64_t", "scale: float", "threads: int64_t"})
    .SetKernelFn(PD_KERNEL(AttentionBackwardOp));

VIT_NO_SECOND_DERIVATIVE(vit_attention_keeping_softmax, "QKV", "Out");
#endif
