from wren.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RankRequest(_message.Message):
    __slots__ = ("user", "items", "model", "recall_features")
    USER_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RECALL_FEATURES_FIELD_NUMBER: _ClassVar[int]
    user: _common_pb2.UserFeatures
    items: _common_pb2.ItemFeatureBatch
    model: str
    recall_features: _common_pb2.Matrix
    def __init__(self, user: _Optional[_Union[_common_pb2.UserFeatures, _Mapping]] = ..., items: _Optional[_Union[_common_pb2.ItemFeatureBatch, _Mapping]] = ..., model: _Optional[str] = ..., recall_features: _Optional[_Union[_common_pb2.Matrix, _Mapping]] = ...) -> None: ...

class RankResponse(_message.Message):
    __slots__ = ("scores", "model_name", "model_version", "variant")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedScalarFieldContainer[float]
    model_name: str
    model_version: str
    variant: str
    def __init__(self, scores: _Optional[_Iterable[float]] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...
