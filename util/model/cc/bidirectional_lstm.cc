// DeepSpeechBidirectionalLstm: the recurrence of the bidirectional LSTM for evaluation and
// inference, forward pass only (util/kernels.py compiles this file; util/model.py uses it).
//
// With TensorFlow's own ops each step of the recurrence is a while_loop iteration of several
// kernels, and TensorFlow's MatMul is slow for the one-row products of single-utterance
// inference. Here all steps of both directions run in one kernel: per step one Eigen product
// of the previous outputs with the recurrent kernel, then the cell's equations on Eigen arrays
// (vectorised logistic and tanh). The equations are BasicLSTMCell's: gates i, j, f, o in that
// order, forget bias added to f. The backward direction reads each sequence from its own last
// step; outputs past a sequence's end are zero, as bidirectional_dynamic_rnn gives them.
//
// The two directions run at the same time on two threads of the intra-op pool. A product too
// large for one thread (big batches or cells, and more than two threads to share it) instead
// runs over the whole pool, one direction after the other.
//
// With bfloat16_weights (bin/transcribe.py --bfloat16 sets it in a frozen graph), the op first
// rounds both recurrent kernels to bfloat16, packed so that each step's product reads them as
// one sequential stream, and each step multiplies them with the outputs rounded to bfloat16,
// accumulating in float32 (AVX-512 BF16's dot products where the CPU has them). Batch-1
// inference reads the whole kernel from memory at every step, so half the bytes is up to twice
// the speed; the arithmetic is that of the bfloat16 matrix products elsewhere in the graph.
//
// Training keeps TensorFlow's loops (util/model.py): compiled float32 training passes were
// measured (see docs/performance.md) and did not pay. Where training runs in bfloat16, the
// loops' products with the recurrent kernels use the same packed bfloat16 product (the two
// ops at the end of this file).

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#include "unsupported/Eigen/CXX11/Tensor"

#ifdef __AVX512BF16__
#include <immintrin.h>
#endif

namespace deepspeech {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using TensorMap = Eigen::TensorMap<Eigen::Tensor<T, 2, Eigen::RowMajor>>;

// Multiply-adds per step from which a product is shared out over the whole intra-op pool.
constexpr int64_t kSharedOutWork = 8 << 20;

// Runs fn(direction, device) for both directions. Small products: one thread per direction,
// both at once, device null. Large ones, with more than two threads to share them: one
// direction after the other, each product over the whole pool (device set).
template <typename Fn>
void ForEachDirection(OpKernelContext* context, int64_t step_work, Fn fn) {
  auto* workers = context->device()->tensorflow_cpu_worker_threads();
  if (step_work >= kSharedOutWork && workers->num_threads > 2) {
    const Eigen::ThreadPoolDevice* device = &context->eigen_cpu_device();
    for (int64_t d = 0; d < 2; ++d) fn(d, device);
    return;
  }
  ::tensorflow::Shard(workers->num_threads, workers->workers, 2,
                      /*cost_per_unit=*/1 << 30,  // any cost that gives each its own thread
                      [&](int64_t begin, int64_t end) {
                        for (int64_t d = begin; d < end; ++d) fn(d, nullptr);
                      });
}

// out[m, n] += a[m, k] * b[k, n] (all row-major), on this thread or, with a device, over its
// pool.
void AddProduct(const Eigen::ThreadPoolDevice* device, const float* a, const float* b,
                int64_t m, int64_t k, int64_t n, float* out) {
  if (device == nullptr) {
    Eigen::Map<Matrix>(out, m, n).noalias() +=
        Eigen::Map<const Matrix>(a, m, k) * Eigen::Map<const Matrix>(b, k, n);
    return;
  }
  const Eigen::array<Eigen::IndexPair<int64_t>, 1> inner = {Eigen::IndexPair<int64_t>(1, 0)};
  TensorMap<float>(out, m, n).device(*device) +=
      TensorMap<const float>(a, m, k).contract(TensorMap<const float>(b, k, n), inner);
}

// bfloat16 recurrent kernels. The kernel [k, n] is cut into blocks of kBlock columns; a block
// holds all rows, two rows interleaved per column ([k / 2][kBlock][2]) as the dot-product
// instructions want them, padded with zeros to whole pairs and blocks. Each block of each
// step's product is then one sequential read with its kBlock outputs in registers.
constexpr int kLanes = 16;               // float32 in a 512-bit register
constexpr int kGroups = 4;               // registers of outputs per block
constexpr int64_t kBlock = kLanes * kGroups;
constexpr int64_t kRowsAtOnce = 4;       // batch rows sharing each load of the kernel

uint16_t ToBfloat16(float x) {  // round to nearest even (the values here are finite)
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

float FromBfloat16(uint16_t x) {
  const uint32_t bits = static_cast<uint32_t>(x) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// The packed layout's sizes for a kernel [k, n].
struct PackedShape {
  int64_t rows, columns, pairs, blocks;
  PackedShape(int64_t k, int64_t n)
      : rows(k), columns(n), pairs((k + 1) / 2), blocks((n + kBlock - 1) / kBlock) {}
  int64_t size() const { return blocks * pairs * kBlock * 2; }  // [blocks][pairs][kBlock][2]
};

// Rounds kernel [k, n] to bfloat16 into the packed layout (every element written, padding
// included).
void PackBfloat16(const float* kernel, const PackedShape& shape, uint16_t* values) {
  const int64_t k = shape.rows, n = shape.columns;
#ifdef __AVX512BF16__
  // Element 2c of a packed pair of rows is row 2p's column c, element 2c + 1 row 2p + 1's.
  alignas(64) uint16_t order[2 * kLanes];
  for (int c = 0; c < kLanes; ++c) order[2 * c] = c, order[2 * c + 1] = kLanes + c;
  const __m512i interleave = _mm512_load_si512(order);
#endif
  for (int64_t block = 0; block < shape.blocks; ++block) {
    const int64_t first = block * kBlock, width = std::min(kBlock, n - first);
    for (int64_t pair = 0; pair < shape.pairs; ++pair) {
      const float* even = kernel + 2 * pair * n + first;
      const float* odd = 2 * pair + 1 < k ? even + n : nullptr;  // null: a zero row
      uint16_t* out = values + (block * shape.pairs + pair) * kBlock * 2;
#ifdef __AVX512BF16__
      for (int g = 0; g < kGroups; ++g) {
        const int64_t valid = std::clamp<int64_t>(width - g * kLanes, 0, kLanes);
        const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
        const __m512 low = _mm512_maskz_loadu_ps(mask, even + g * kLanes);
        const __m512 high =
            odd ? _mm512_maskz_loadu_ps(mask, odd + g * kLanes) : _mm512_setzero_ps();
        const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(high, low);  // low: lanes 0-15
        _mm512_storeu_si512(out + g * 2 * kLanes, _mm512_permutexvar_epi16(interleave, both));
      }
#else
      for (int64_t c = 0; c < kBlock; ++c) {
        out[2 * c] = c < width ? ToBfloat16(even[c]) : 0;
        out[2 * c + 1] = c < width && odd ? ToBfloat16(odd[c]) : 0;
      }
#endif
    }
  }
}

// pairs[r * shape.pairs + p] = a[r, 2p] and a[r, 2p + 1] in bfloat16, for a [m, shape.rows].
void RoundToPairs(const float* a, int64_t m, const PackedShape& shape, uint32_t* pairs) {
  const int64_t k = shape.rows;
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t p = 0; p < shape.pairs; ++p) {
      const uint32_t low = ToBfloat16(a[r * k + 2 * p]);
      const uint32_t high = 2 * p + 1 < k ? ToBfloat16(a[r * k + 2 * p + 1]) : 0;
      pairs[r * shape.pairs + p] = low | (high << 16);
    }
  }
}

// out[r, :] += a[r, :] * kernel for rows [0, m), blocks [first, last) of columns, with a as
// RoundToPairs gives it and the kernel as PackBfloat16 does.
void AddProductBlocks(const uint32_t* a_pairs, int64_t m, const PackedShape& shape,
                      const uint16_t* kernel, int64_t first, int64_t last, float* out) {
  const int64_t pairs = shape.pairs, n = shape.columns;
  for (int64_t block = first; block < last; ++block) {
    const uint16_t* values = kernel + block * pairs * kBlock * 2;
    const int64_t column = block * kBlock, width = std::min(kBlock, n - column);
    for (int64_t r0 = 0; r0 < m; r0 += kRowsAtOnce) {
      const int64_t rows = std::min(kRowsAtOnce, m - r0);
#ifdef __AVX512BF16__
      __mmask16 mask[kGroups];
      __m512 sum[kRowsAtOnce][kGroups];
      for (int g = 0; g < kGroups; ++g) {
        const int64_t valid = std::clamp<int64_t>(width - g * kLanes, 0, kLanes);
        mask[g] = static_cast<__mmask16>((1u << valid) - 1);
        for (int64_t r = 0; r < rows; ++r) {
          sum[r][g] = _mm512_maskz_loadu_ps(mask[g], out + (r0 + r) * n + column + g * kLanes);
        }
      }
      for (int64_t p = 0; p < pairs; ++p) {
        __m512bh w[kGroups];
        for (int g = 0; g < kGroups; ++g) {
          w[g] = (__m512bh)_mm512_loadu_si512(values + (p * kBlock + g * kLanes) * 2);
        }
        for (int64_t r = 0; r < rows; ++r) {
          const __m512bh x = (__m512bh)_mm512_set1_epi32(a_pairs[(r0 + r) * pairs + p]);
          for (int g = 0; g < kGroups; ++g) sum[r][g] = _mm512_dpbf16_ps(sum[r][g], w[g], x);
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        for (int g = 0; g < kGroups; ++g) {
          _mm512_mask_storeu_ps(out + (r0 + r) * n + column + g * kLanes, mask[g], sum[r][g]);
        }
      }
#else  // the same arithmetic without the dot-product instructions
      for (int64_t r = r0; r < r0 + rows; ++r) {
        float sum[kBlock] = {};
        for (int64_t p = 0; p < pairs; ++p) {
          const float x0 = FromBfloat16(a_pairs[r * pairs + p] & 0xFFFF);
          const float x1 = FromBfloat16(a_pairs[r * pairs + p] >> 16);
          const uint16_t* w = values + p * kBlock * 2;
          for (int64_t c = 0; c < kBlock; ++c) {
            sum[c] += x0 * FromBfloat16(w[2 * c]) + x1 * FromBfloat16(w[2 * c + 1]);
          }
        }
        for (int64_t c = 0; c < width; ++c) out[r * n + column + c] += sum[c];
      }
#endif
    }
  }
}

// out[m, n] += bfloat16(a[m, k]) * kernel, on this thread or, with a device, over its pool.
void AddProductBfloat16(const Eigen::ThreadPoolDevice* device, const float* a, int64_t m,
                        const PackedShape& shape, const uint16_t* kernel,
                        std::vector<uint32_t>* a_pairs, float* out) {
  a_pairs->resize(m * shape.pairs);
  RoundToPairs(a, m, shape, a_pairs->data());
  if (device == nullptr) {
    AddProductBlocks(a_pairs->data(), m, shape, kernel, 0, shape.blocks, out);
    return;
  }
  const double work = 2.0 * m * shape.pairs * kBlock;
  const Eigen::TensorOpCost cost(work, 4.0 * m * kBlock, work);
  device->parallelFor(shape.blocks, cost, [&](Eigen::Index first, Eigen::Index last) {
    AddProductBlocks(a_pairs->data(), m, shape, kernel, first, last, out);
  });
}

REGISTER_OP("DeepSpeechBidirectionalLstm")
    .Input("input_gates: float")      // [time, batch, 8 * cell]: forward's 4 gates, backward's
    .Input("forward_kernel: float")   // [cell, 4 * cell] recurrent kernels
    .Input("backward_kernel: float")  // [cell, 4 * cell]
    .Input("sequence_length: int32")  // [batch]
    .Attr("forget_bias: float = 1.0")
    .Attr("bfloat16_weights: bool = false")  // the recurrent products in bfloat16 (above)
    .Output("outputs: float")  // [time, batch, 2 * cell]: forward outputs, backward outputs
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle gates, forward, backward, lengths;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &gates));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &forward));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 2, &backward));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 1, &lengths));
      TF_RETURN_IF_ERROR(c->Merge(forward, backward, &forward));
      DimensionHandle cell = c->Dim(forward, 0), width, gate_width, output_width, batch;
      TF_RETURN_IF_ERROR(c->Multiply(cell, 4, &width));
      TF_RETURN_IF_ERROR(c->Merge(width, c->Dim(forward, 1), &width));
      TF_RETURN_IF_ERROR(c->Multiply(cell, 8, &gate_width));
      TF_RETURN_IF_ERROR(c->Merge(gate_width, c->Dim(gates, 2), &gate_width));
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(gates, 1), c->Dim(lengths, 0), &batch));
      TF_RETURN_IF_ERROR(c->Multiply(cell, 2, &output_width));
      c->set_output(0, c->MakeShape({c->Dim(gates, 0), batch, output_width}));
      return absl::OkStatus();
    })
    .Doc("The forward pass of a bidirectional LSTM's recurrence (BasicLSTMCell's equations).");

class BidirectionalLstmOp : public OpKernel {
 public:
  explicit BidirectionalLstmOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("forget_bias", &forget_bias_));
    OP_REQUIRES_OK(context, context->GetAttr("bfloat16_weights", &bfloat16_weights_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& gates = context->input(0);
    const Tensor& forward = context->input(1);
    const Tensor& backward = context->input(2);
    const Tensor& lengths = context->input(3);
    OP_REQUIRES(context,
                gates.dims() == 3 && forward.dims() == 2 && forward.shape() == backward.shape() &&
                    lengths.dims() == 1 && forward.dim_size(1) == 4 * forward.dim_size(0) &&
                    gates.dim_size(2) == 8 * forward.dim_size(0) &&
                    lengths.dim_size(0) == gates.dim_size(1),
                absl::InvalidArgumentError(
                    "expected input_gates [time, batch, 8 * cell], kernels [cell, 4 * cell] and "
                    "sequence_length [batch], got " + gates.shape().DebugString() + ", " +
                    forward.shape().DebugString() + ", " + backward.shape().DebugString() +
                    ", " + lengths.shape().DebugString()));
    const int64_t steps = gates.dim_size(0), batch = gates.dim_size(1);
    const int64_t cell = forward.dim_size(0);
    const auto length = lengths.flat<int32_t>();
    for (int64_t b = 0; b < batch; ++b) {
      OP_REQUIRES(context, length(b) >= 0 && length(b) <= steps,
                  absl::InvalidArgumentError("sequence_length[" + std::to_string(b) + "] = " +
                                             std::to_string(length(b)) + " is outside [0, " +
                                             std::to_string(steps) + "]"));
    }
    Tensor* outputs = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, TensorShape({steps, batch, 2 * cell}), &outputs));
    outputs->flat<float>().setZero();
    if (steps == 0 || batch == 0 || cell == 0) return;

    const float* kernels[2] = {forward.flat<float>().data(), backward.flat<float>().data()};
    ForEachDirection(context, batch * cell * 4 * cell,
                     [&](int64_t direction, const Eigen::ThreadPoolDevice* device) {
                       std::unique_ptr<uint16_t[]> packed;  // uninitialised: all written
                       if (bfloat16_weights_) {
                         packed.reset(new uint16_t[PackedShape(cell, 4 * cell).size()]);
                         PackBfloat16(kernels[direction], PackedShape(cell, 4 * cell),
                                      packed.get());
                       }
                       Recurrence(direction, gates.flat<float>().data(), kernels[direction],
                                  packed.get(), length.data(), steps, batch, cell,
                                  outputs->flat<float>().data(), device);
                     });
  }

 private:
  // One direction: 0 reads steps 0, 1, ..., 1 reads each sequence from its last step back.
  // ``device`` is the pool to share each step's product over, or null for this thread only;
  // ``packed`` the kernel as PackBfloat16 gives it, or null for float32 products.
  void Recurrence(int64_t direction, const float* gates, const float* kernel,
                  const uint16_t* packed, const int32_t* length, int64_t steps, int64_t batch, int64_t cell,
                  float* outputs, const Eigen::ThreadPoolDevice* device) const {
    const int64_t width = 4 * cell;
    Matrix pre(batch, width), state = Matrix::Zero(batch, cell), h = Matrix::Zero(batch, cell);
    std::vector<uint32_t> h_pairs;
    const int64_t longest = *std::max_element(length, length + batch);
    for (int64_t s = 0; s < longest; ++s) {
      for (int64_t b = 0; b < batch; ++b) {
        if (s < length[b]) {
          const int64_t t = direction == 0 ? s : length[b] - 1 - s;
          pre.row(b) = Eigen::Map<const Eigen::RowVectorXf>(
              gates + (t * batch + b) * 2 * width + direction * width, width);
        }
      }
      if (s > 0 && packed != nullptr) {
        AddProductBfloat16(device, h.data(), batch, PackedShape(cell, width), packed, &h_pairs,
                           pre.data());
      } else if (s > 0) {
        AddProduct(device, h.data(), kernel, batch, cell, width, pre.data());
      }
      for (int64_t b = 0; b < batch; ++b) {
        if (s >= length[b]) continue;  // finished: its rows are never read again
        auto i = pre.row(b).segment(0, cell).array();
        auto j = pre.row(b).segment(cell, cell).array();
        auto f = pre.row(b).segment(2 * cell, cell).array();
        auto o = pre.row(b).segment(3 * cell, cell).array();
        auto c = state.row(b).array();
        c = c * (f + forget_bias_).logistic() + i.logistic() * j.tanh();
        h.row(b).array() = c.tanh() * o.logistic();
        const int64_t t = direction == 0 ? s : length[b] - 1 - s;
        Eigen::Map<Eigen::RowVectorXf>(outputs + (t * batch + b) * 2 * cell + direction * cell,
                                       cell) = h.row(b);
      }
    }
  }

  float forget_bias_;
  bool bfloat16_weights_;
};

REGISTER_KERNEL_BUILDER(Name("DeepSpeechBidirectionalLstm").Device(::tensorflow::DEVICE_CPU),
                        BidirectionalLstmOp);

// The training loops' products in bfloat16 (util/model.py, where training runs in bfloat16):
// DeepSpeechPackBfloat16 packs each direction's recurrent kernel once per training step,
// outside the loops, and DeepSpeechBfloat16Product multiplies with it at every step. Both
// directions' products run over the intra-op pool, in blocks of columns. Their gradients are
// the hand-written backward pass's business (util/model.py), so none is registered.

REGISTER_OP("DeepSpeechPackBfloat16")
    .Input("kernels: float")   // [directions, k, n]
    .Output("packed: uint16")  // [directions, the packed size of [k, n]]
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle kernels;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &kernels));
      c->set_output(0, c->Matrix(c->Dim(kernels, 0), InferenceContext::kUnknownDim));
      return absl::OkStatus();
    })
    .Doc("Kernels rounded to bfloat16 in the layout DeepSpeechBfloat16Product reads.");

class PackBfloat16Op : public OpKernel {
 public:
  explicit PackBfloat16Op(OpKernelConstruction* context) : OpKernel(context) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& kernels = context->input(0);
    OP_REQUIRES(context, kernels.dims() == 3,
                absl::InvalidArgumentError("expected kernels [directions, k, n], got " +
                                           kernels.shape().DebugString()));
    const int64_t directions = kernels.dim_size(0);
    const PackedShape shape(kernels.dim_size(1), kernels.dim_size(2));
    Tensor* packed = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({directions, shape.size()}), &packed));
    const float* source = kernels.flat<float>().data();
    uint16_t* target = packed->flat<uint16_t>().data();
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(workers->num_threads, workers->workers, directions, 1 << 30,
                        [&](int64_t begin, int64_t end) {
                          for (int64_t d = begin; d < end; ++d) {
                            PackBfloat16(source + d * shape.rows * shape.columns, shape,
                                         target + d * shape.size());
                          }
                        });
  }
};

REGISTER_KERNEL_BUILDER(Name("DeepSpeechPackBfloat16").Device(::tensorflow::DEVICE_CPU),
                        PackBfloat16Op);

REGISTER_OP("DeepSpeechBfloat16Product")
    .Input("a: float")         // [directions, m, k]
    .Input("packed: uint16")   // DeepSpeechPackBfloat16 of kernels [directions, k, columns]
    .Attr("columns: int >= 0")
    .Output("product: float")  // [directions, m, columns]
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle a, packed;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &a));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &packed));
      int64_t columns;
      TF_RETURN_IF_ERROR(c->GetAttr("columns", &columns));
      DimensionHandle directions;
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(a, 0), c->Dim(packed, 0), &directions));
      c->set_output(0, c->MakeShape({directions, c->Dim(a, 1), columns}));
      return absl::OkStatus();
    })
    .Doc("a times kernels, both rounded to bfloat16, summed in float32.");

class Bfloat16ProductOp : public OpKernel {
 public:
  explicit Bfloat16ProductOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("columns", &columns_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& a = context->input(0);
    const Tensor& packed = context->input(1);
    OP_REQUIRES(context, a.dims() == 3 && packed.dims() == 2,
                absl::InvalidArgumentError("expected a [directions, m, k] and packed "
                                           "[directions, size], got " +
                                           a.shape().DebugString() + ", " +
                                           packed.shape().DebugString()));
    const int64_t directions = a.dim_size(0), m = a.dim_size(1);
    const PackedShape shape(a.dim_size(2), columns_);
    OP_REQUIRES(context,
                packed.dim_size(0) == directions && packed.dim_size(1) == shape.size(),
                absl::InvalidArgumentError(
                    "packed " + packed.shape().DebugString() + " is not the packing of " +
                    std::to_string(directions) + " kernels [" + std::to_string(shape.rows) +
                    ", " + std::to_string(columns_) + "]"));
    Tensor* product = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({directions, m, columns_}), &product));
    product->flat<float>().setZero();
    if (m == 0 || shape.rows == 0 || columns_ == 0) return;
    std::vector<uint32_t> a_pairs(directions * m * shape.pairs);
    for (int64_t d = 0; d < directions; ++d) {
      RoundToPairs(a.flat<float>().data() + d * m * shape.rows, m, shape,
                   a_pairs.data() + d * m * shape.pairs);
    }
    const uint16_t* kernels = packed.flat<uint16_t>().data();
    float* out = product->flat<float>().data();
    // Units of work: one block of columns of one direction.
    auto* workers = context->device()->tensorflow_cpu_worker_threads();
    ::tensorflow::Shard(
        workers->num_threads, workers->workers, directions * shape.blocks,
        /*cost_per_unit=*/2 * m * shape.pairs * kBlock, [&](int64_t begin, int64_t end) {
          for (int64_t unit = begin; unit < end; ++unit) {
            const int64_t d = unit / shape.blocks, block = unit % shape.blocks;
            AddProductBlocks(a_pairs.data() + d * m * shape.pairs, m, shape,
                             kernels + d * shape.size(), block, block + 1,
                             out + d * m * columns_);
          }
        });
  }

 private:
  int64_t columns_;
};

REGISTER_KERNEL_BUILDER(Name("DeepSpeechBfloat16Product").Device(::tensorflow::DEVICE_CPU),
                        Bfloat16ProductOp);

}  // namespace deepspeech
