// The subset of CoreML's Model.proto, FeatureTypes.proto and MIL.proto that ditc writes and
// reads, declared for protobufjs. Field numbers and enum values are the facts of the upstream
// protos (digest: docs/formats/coreml.md); the declarations are ours.
import protobuf from "protobufjs";

const f = (type: string, id: number, rule?: "repeated") => (rule ? { type, id, rule } : { type, id });
const map = (valueType: string, id: number) => ({ keyType: "string", type: valueType, id });

const root = protobuf.Root.fromJSON({
  nested: {
    CoreML: {
      nested: {
        Model: { fields: { specificationVersion: f("int32", 1), description: f("ModelDescription", 2), isUpdatable: f("bool", 10), mlProgram: f("Program", 502) } },
        ModelDescription: { fields: { input: f("FeatureDescription", 1, "repeated"), output: f("FeatureDescription", 10, "repeated"), metadata: f("Metadata", 100) } },
        Metadata: { fields: { shortDescription: f("string", 1), versionString: f("string", 2), author: f("string", 3), license: f("string", 4), userDefined: map("string", 100) } },
        FeatureDescription: { fields: { name: f("string", 1), shortDescription: f("string", 2), type: f("FeatureType", 3) } },
        FeatureType: { fields: { multiArrayType: f("ArrayFeatureType", 5), isOptional: f("bool", 1000) } },
        ArrayFeatureType: { fields: { shape: f("int64", 1, "repeated"), dataType: f("int32", 2) } },
        Program: { fields: { version: f("int64", 1), functions: map("Function", 2), docString: f("string", 3), attributes: map("Value", 4) } },
        Function: { fields: { inputs: f("NamedValueType", 1, "repeated"), opset: f("string", 2), blockSpecializations: map("Block", 3), attributes: map("Value", 4) } },
        Block: { fields: { inputs: f("NamedValueType", 1, "repeated"), outputs: f("string", 2, "repeated"), operations: f("Operation", 3, "repeated"), attributes: map("Value", 4) } },
        Operation: { fields: { type: f("string", 1), inputs: map("Argument", 2), outputs: f("NamedValueType", 3, "repeated"), blocks: f("Block", 4, "repeated"), attributes: map("Value", 5) } },
        Argument: { fields: { arguments: f("Binding", 1, "repeated") } },
        Binding: { oneofs: { binding: { oneof: ["name", "value"] } }, fields: { name: f("string", 1), value: f("Value", 2) } },
        NamedValueType: { fields: { name: f("string", 1), type: f("ValueType", 2) } },
        ValueType: { fields: { tensorType: f("TensorType", 1) } },
        TensorType: { fields: { dataType: f("int32", 1), rank: f("int64", 2), dimensions: f("Dimension", 3, "repeated") } },
        Dimension: { fields: { constant: f("ConstantDimension", 1) } },
        ConstantDimension: { fields: { size: f("uint64", 1) } },
        Value: { fields: { docString: f("string", 1), type: f("ValueType", 2), immediateValue: f("ImmediateValue", 3), blobFileValue: f("BlobFileValue", 5) } },
        ImmediateValue: { fields: { tensor: f("TensorValue", 1) } },
        BlobFileValue: { fields: { fileName: f("string", 1), offset: f("uint64", 2) } },
        TensorValue: {
          fields: {
            floats: f("RepeatedFloats", 1), ints: f("RepeatedInts", 2), bools: f("RepeatedBools", 3), strings: f("RepeatedStrings", 4),
            longInts: f("RepeatedLongInts", 5), doubles: f("RepeatedDoubles", 6), bytes: f("RepeatedBytes", 7),
          },
        },
        RepeatedFloats: { fields: { values: f("float", 1, "repeated") } },
        RepeatedInts: { fields: { values: f("int32", 1, "repeated") } },
        RepeatedBools: { fields: { values: f("bool", 1, "repeated") } },
        RepeatedStrings: { fields: { values: f("string", 1, "repeated") } },
        RepeatedLongInts: { fields: { values: f("int64", 1, "repeated") } },
        RepeatedDoubles: { fields: { values: f("double", 1, "repeated") } },
        RepeatedBytes: { fields: { values: f("bytes", 1) } },
      },
    },
  },
});

const ModelType = root.lookupType("CoreML.Model");

/** MIL.proto DataType (not the weight.bin BlobDataType codes). */
export const MIL_DTYPE = { BOOL: 1, STRING: 2, FLOAT16: 10, FLOAT32: 11, INT32: 23, UINT8: 31, UINT32: 33, UINT4: 35 } as const;
/** FeatureTypes.proto ArrayFeatureType.ArrayDataType. */
export const ARRAY_DTYPE = { FLOAT32: 65568, FLOAT16: 65552, INT32: 131104 } as const;

export interface MilTensorType { dataType?: number; rank?: number; dimensions?: { constant?: { size?: number } }[] }
export interface MilValue {
  type?: { tensorType?: MilTensorType };
  immediateValue?: { tensor?: { floats?: { values?: number[] }; ints?: { values?: number[] }; bools?: { values?: boolean[] }; strings?: { values?: string[] }; longInts?: { values?: number[] }; bytes?: { values?: Uint8Array } } };
  blobFileValue?: { fileName?: string; offset?: number };
}
export interface MilNamedValueType { name?: string; type?: { tensorType?: MilTensorType } }
export interface MilOperation {
  type?: string;
  inputs?: Record<string, { arguments?: { name?: string; value?: MilValue }[] }>;
  outputs?: MilNamedValueType[];
  attributes?: Record<string, MilValue>;
}
export interface MilBlock { outputs?: string[]; operations?: MilOperation[] }
export interface MilFunction { inputs?: MilNamedValueType[]; opset?: string; blockSpecializations?: Record<string, MilBlock> }
export interface CoremlModel {
  specificationVersion?: number;
  description?: {
    input?: { name?: string; type?: { multiArrayType?: { shape?: number[]; dataType?: number } } }[];
    output?: { name?: string; type?: { multiArrayType?: { shape?: number[]; dataType?: number } } }[];
    metadata?: { userDefined?: Record<string, string> };
  };
  mlProgram?: { version?: number; functions?: Record<string, MilFunction> };
}

/**
 * The emitters' objects already hold what the encoder writes (numbers, strings, Uint8Arrays,
 * arrays, plain maps), so they are encoded as they are: `fromObject` would first copy the whole
 * tree, which cost more than the encoding on the full preset's 45k-op programs (same bytes).
 */
export function encodeCoremlModel(m: CoremlModel): Uint8Array {
  return ModelType.encode(m).finish();
}

export function decodeCoremlModel(bytes: Uint8Array): CoremlModel {
  return ModelType.toObject(ModelType.decode(bytes), { longs: Number, defaults: false, arrays: true, objects: true }) as CoremlModel;
}

/** Spec version and opset per deployment target (docs/formats/coreml.md). */
export const DEPLOYMENT = { iOS17: { spec: 8, opset: "CoreML7" }, iOS18: { spec: 9, opset: "CoreML8" } } as const;
export type Deployment = keyof typeof DEPLOYMENT;
