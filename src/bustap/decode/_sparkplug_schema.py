"""The Sparkplug B payload schema (Eclipse Sparkplug 3.0, package
``org.eclipse.tahu.protobuf``), built as protobuf descriptors at first use.

The published ``sparkplug_b.proto`` is written out here field by field
instead of shipping protoc output, so no generated code lives in the tree;
extension ranges are left out (unknown fields are kept by protobuf and ignored
here). Needs the ``protobuf`` package: ``pip install 'bustap[sparkplug]'``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ..errors import ConfigError

PACKAGE = "org.eclipse.tahu.protobuf"

#: Sparkplug DataType enum: id -> name (spec section 6.4.16)
DATA_TYPES = {
    0: "Unknown", 1: "Int8", 2: "Int16", 3: "Int32", 4: "Int64", 5: "UInt8", 6: "UInt16",
    7: "UInt32", 8: "UInt64", 9: "Float", 10: "Double", 11: "Boolean", 12: "String",
    13: "DateTime", 14: "Text", 15: "UUID", 16: "DataSet", 17: "Bytes", 18: "File",
    19: "Template", 20: "PropertySet", 21: "PropertySetList", 22: "Int8Array",
    23: "Int16Array", 24: "Int32Array", 25: "Int64Array", 26: "UInt8Array",
    27: "UInt16Array", 28: "UInt32Array", 29: "UInt64Array", 30: "FloatArray",
    31: "DoubleArray", 32: "BooleanArray", 33: "StringArray", 34: "DateTimeArray",
}

# (name, number, type, label, message type) per message; type names as in
# FieldDescriptorProto.Type without the TYPE_ prefix. A oneof is named by a
# fifth element's "oneof:" marker.
_V = [("int_value", "uint32"), ("long_value", "uint64"), ("float_value", "float"),
      ("double_value", "double"), ("boolean_value", "bool"), ("string_value", "string")]
MESSAGES: dict[str, list[tuple[Any, ...]]] = {
    "Payload": [("timestamp", 1, "uint64"), ("metrics", 2, "message", "repeated", "Metric"),
                ("seq", 3, "uint64"), ("uuid", 4, "string"), ("body", 5, "bytes")],
    "Payload.Metric": [
        ("name", 1, "string"), ("alias", 2, "uint64"), ("timestamp", 3, "uint64"),
        ("datatype", 4, "uint32"), ("is_historical", 5, "bool"), ("is_transient", 6, "bool"),
        ("is_null", 7, "bool"), ("metadata", 8, "message", "optional", "MetaData"),
        ("properties", 9, "message", "optional", "PropertySet"),
        *[(n, 10 + i, t, "oneof") for i, (n, t) in enumerate(_V)],
        ("bytes_value", 16, "bytes", "oneof"),
        ("dataset_value", 17, "message", "oneof", "DataSet"),
        ("template_value", 18, "message", "oneof", "Template")],
    "Payload.MetaData": [
        ("is_multi_part", 1, "bool"), ("content_type", 2, "string"), ("size", 3, "uint64"),
        ("seq", 4, "uint64"), ("file_name", 5, "string"), ("file_type", 6, "string"),
        ("md5", 7, "string"), ("description", 8, "string")],
    "Payload.PropertyValue": [
        ("type", 1, "uint32"), ("is_null", 2, "bool"),
        *[(n, 3 + i, t, "oneof") for i, (n, t) in enumerate(_V)],
        ("propertyset_value", 9, "message", "oneof", "PropertySet"),
        ("propertysets_value", 10, "message", "oneof", "PropertySetList")],
    "Payload.PropertySet": [("keys", 1, "string", "repeated"),
                            ("values", 2, "message", "repeated", "PropertyValue")],
    "Payload.PropertySetList": [("propertyset", 1, "message", "repeated", "PropertySet")],
    "Payload.DataSet": [("num_of_columns", 1, "uint64"), ("columns", 2, "string", "repeated"),
                        ("types", 3, "uint32", "repeated"),
                        ("rows", 4, "message", "repeated", "DataSet.Row")],
    "Payload.DataSet.Row": [("elements", 1, "message", "repeated", "DataSet.DataSetValue")],
    "Payload.DataSet.DataSetValue": [(n, 1 + i, t, "oneof") for i, (n, t) in enumerate(_V)],
    "Payload.Template": [
        ("version", 1, "string"), ("metrics", 2, "message", "repeated", "Metric"),
        ("parameters", 3, "message", "repeated", "Template.Parameter"),
        ("template_ref", 4, "string"), ("is_definition", 5, "bool")],
    "Payload.Template.Parameter": [("name", 1, "string"), ("type", 2, "uint32"),
                                   *[(n, 3 + i, t, "oneof") for i, (n, t) in enumerate(_V)]],
}


@cache
def payload_class() -> Any:
    """The Payload message class (built once)."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError as exc:
        raise ConfigError("the sparkplug-b decoder needs protobuf: install "
                          "'bustap[sparkplug]'", value="sparkplug-b") from exc
    fdp = descriptor_pb2.FileDescriptorProto(name="bustap_sparkplug_b.proto", package=PACKAGE,
                                             syntax="proto2")
    F = descriptor_pb2.FieldDescriptorProto
    protos: dict[str, Any] = {}
    for path in MESSAGES:  # parents come before their nested messages
        parent, _, name = path.rpartition(".")
        container = protos[parent].nested_type if parent else fdp.message_type
        protos[path] = container.add(name=name)
    for path, specs in MESSAGES.items():
        msg = protos[path]
        oneof = -1
        for spec in specs:
            fname, number, ftype = spec[0], spec[1], spec[2]
            label = spec[3] if len(spec) > 3 else "optional"
            field = msg.field.add(name=fname, number=number,
                                  type=getattr(F, f"TYPE_{ftype.upper()}"),
                                  label=F.LABEL_REPEATED if label == "repeated"
                                  else F.LABEL_OPTIONAL)
            if ftype == "message":
                field.type_name = f".{PACKAGE}.Payload.{spec[4]}"
            if label == "oneof":
                if oneof < 0:
                    msg.oneof_decl.add(name="value")
                    oneof = 0
                field.oneof_index = oneof
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))
