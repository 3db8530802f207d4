// The part of the TFLite/LiteRT flatbuffer schema ditc writes and reads, as data: enum values,
// table slots and the option tables of the ops on the DiT list. Every number comes from
// LiteRT's tflite/converter/schema/schema.fbs (docs/formats/tflite.md names the commit; slot n is
// vtable entry n; a union takes two slots, its type byte then its table). The writer (write.ts) and the checked reader (flatbuffer.ts) both use it.

export const FILE_IDENTIFIER = "TFL3";
export const SCHEMA_VERSION = 3;

export const TENSOR_TYPE = { FLOAT32: 0, FLOAT16: 1, INT32: 2, UINT8: 3, INT64: 4, BOOL: 6, INT16: 7, INT8: 9 } as const;

/** BuiltinOperator codes of the ops ditc emits or reads. */
export const OP = {
  ADD: 0, CONCATENATION: 2, CONV_2D: 3, DEPTHWISE_CONV_2D: 4, DEPTH_TO_SPACE: 5, DEQUANTIZE: 6, FULLY_CONNECTED: 9,
  LOGISTIC: 14, MUL: 18, RESHAPE: 22, SOFTMAX: 25, TANH: 28, GATHER: 36, TRANSPOSE: 39, MEAN: 40, SUB: 41, DIV: 42,
  EXP: 47, SPLIT: 49, CAST: 53, MAXIMUM: 55, NEG: 59, SLICE: 65, SIN: 66, SUM: 74, SQRT: 75, RSQRT: 76, POW: 78,
  REDUCE_MAX: 82, SPLIT_V: 102, COS: 108, BATCH_MATMUL: 126, GELU: 150,
} as const;
export type OpName = keyof typeof OP;
export const OP_NAME: Record<number, OpName> = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k as OpName]));

/** Codes at or above this live only in OperatorCode.builtin_code; the byte field holds this value. */
export const PLACEHOLDER_FOR_GREATER_OP_CODES = 127;

export const PADDING = { SAME: 0, VALID: 1 } as const;
export const ACTIVATION_NONE = 0;

type FieldType = "bool" | "i8" | "i32" | "f32" | "i32[]";
/** An option field: its name (schema spelling), its type, and the schema default when one is given. */
export type OptionField = readonly [name: string, type: FieldType, schemaDefault?: number | boolean];

export interface OptionTable {
  /** index in the BuiltinOptions union (= Operator.builtin_options_type) */
  readonly union: number;
  /** fields in slot order */
  readonly fields: readonly OptionField[];
}

const act: OptionField = ["fused_activation_function", "i8"];

export const OPTIONS = {
  Conv2DOptions: { union: 1, fields: [["padding", "i8"], ["stride_w", "i32"], ["stride_h", "i32"], act, ["dilation_w_factor", "i32", 1], ["dilation_h_factor", "i32", 1]] },
  DepthwiseConv2DOptions: { union: 2, fields: [["padding", "i8"], ["stride_w", "i32"], ["stride_h", "i32"], ["depth_multiplier", "i32"], act, ["dilation_w_factor", "i32", 1], ["dilation_h_factor", "i32", 1]] },
  FullyConnectedOptions: { union: 8, fields: [act, ["weights_format", "i8"], ["keep_num_dims", "bool"], ["asymmetric_quantize_inputs", "bool"]] },
  SoftmaxOptions: { union: 9, fields: [["beta", "f32"]] },
  ConcatenationOptions: { union: 10, fields: [["axis", "i32"], act] },
  AddOptions: { union: 11, fields: [act, ["pot_scale_int16", "bool", true]] },
  ReshapeOptions: { union: 17, fields: [["new_shape", "i32[]"]] },
  MulOptions: { union: 21, fields: [act] },
  GatherOptions: { union: 23, fields: [["axis", "i32"], ["batch_dims", "i32", 0]] },
  TransposeOptions: { union: 26, fields: [] },
  ReducerOptions: { union: 27, fields: [["keep_dims", "bool"]] },
  SubOptions: { union: 28, fields: [act, ["pot_scale_int16", "bool", true]] },
  DivOptions: { union: 29, fields: [act] },
  ExpOptions: { union: 33, fields: [] },
  SplitOptions: { union: 35, fields: [["num_splits", "i32"]] },
  CastOptions: { union: 37, fields: [["in_data_type", "i8"], ["out_data_type", "i8"]] },
  DequantizeOptions: { union: 38, fields: [] },
  MaximumMinimumOptions: { union: 39, fields: [] },
  NegOptions: { union: 42, fields: [] },
  SliceOptions: { union: 48, fields: [] },
  PowOptions: { union: 56, fields: [] },
  SplitVOptions: { union: 79, fields: [["num_splits", "i32"]] },
  CosOptions: { union: 84, fields: [] },
  DepthToSpaceOptions: { union: 94, fields: [["block_size", "i32"]] },
  BatchMatMulOptions: { union: 101, fields: [["adj_x", "bool"], ["adj_y", "bool"], ["asymmetric_quantize_inputs", "bool"]] },
  GeluOptions: { union: 116, fields: [["approximate", "bool"]] },
} as const satisfies Record<string, OptionTable>;
export type OptionTableName = keyof typeof OPTIONS;
export const OPTION_TABLE_BY_UNION: Record<number, OptionTableName> = Object.fromEntries(Object.entries(OPTIONS).map(([k, v]) => [v.union, k as OptionTableName]));

export type OptionValues = Record<string, number | boolean | readonly number[]>;

/** Table slots (vtable entry numbers) of the structural tables. */
export const SLOT = {
  Model: { version: 0, operator_codes: 1, subgraphs: 2, description: 3, buffers: 4, metadata: 6, signature_defs: 7 },
  SubGraph: { tensors: 0, inputs: 1, outputs: 2, operators: 3, name: 4 },
  Tensor: { shape: 0, type: 1, buffer: 2, name: 3, quantization: 4, is_variable: 5, sparsity: 6, shape_signature: 7, has_rank: 8, external_buffer: 10 },
  Buffer: { data: 0, offset: 1, size: 2 },
  Operator: { opcode_index: 0, inputs: 1, outputs: 2, builtin_options_type: 3, builtin_options: 4, custom_options: 5, builtin_options_2_type: 11 },
  OperatorCode: { deprecated_builtin_code: 0, custom_code: 1, version: 2, builtin_code: 3 },
  QuantizationParameters: { min: 0, max: 1, scale: 2, zero_point: 3, details_type: 4, quantized_dimension: 6 },
  SignatureDef: { inputs: 0, outputs: 1, signature_key: 2, subgraph_index: 4 },
  TensorMap: { name: 0, tensor_index: 1 },
  Metadata: { name: 0, buffer: 1 },
} as const;

// ---- the model as plain data, between the emitter and the writer, and out of the reader ----

export interface TflQuantization {
  scale: number[];
  zeroPoint: number[];
  quantizedDimension: number;
}

export interface TflTensor {
  shape: number[];
  type: number;
  /** 0: no data (activation or graph input) */
  buffer: number;
  name: string;
  quantization?: TflQuantization;
  /** set by the reader when the tensor declares sparsity (ditc writes none) */
  sparse?: boolean;
}

export interface TflOperator {
  opcodeIndex: number;
  /** -1 marks an absent optional input */
  inputs: number[];
  outputs: number[];
  options?: { table: OptionTableName; values: OptionValues };
  /** set by the reader: a BuiltinOptions union index ditc has no table for */
  unknownOptions?: number;
}

export interface TflOperatorCode {
  builtinCode: number;
  version: number;
  /** set by the reader for custom operators */
  custom?: boolean;
}

/** Buffer data inline in the flatbuffer, or a range of the file after it (the > 2 GiB layout). */
/** A buffer's payload: none, inline bytes, or bytes appended after the flatbuffer at a file offset. */
export type TflBuffer = { kind: "empty" } | { kind: "inline"; data: Uint8Array } | { kind: "appended"; offset: number; size: number };

/**
 * What the writer takes besides: inline space it leaves zero, for the emitter to fill in the file
 * (a weight streams to the file instead of being copied into the flatbuffer).
 */
export type TflBufferToWrite = TflBuffer | { kind: "reserved"; size: number };

export interface TflSubGraph {
  tensors: TflTensor[];
  inputs: number[];
  outputs: number[];
  operators: TflOperator[];
  name: string;
}

export interface TflSignature {
  key: string;
  inputs: { name: string; tensor: number }[];
  outputs: { name: string; tensor: number }[];
}

/** A model as read (B = TflBuffer) or as written (B = TflBufferToWrite). */
export interface TflModel<B = TflBuffer> {
  version: number;
  operatorCodes: TflOperatorCode[];
  subgraphs: TflSubGraph[];
  description: string;
  buffers: B[];
  metadata: { name: string; buffer: number }[];
  signatures: TflSignature[];
}
