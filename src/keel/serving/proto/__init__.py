"""Generated protobuf and gRPC modules of the Open Inference Protocol v2 (``make proto``).

``grpc_predict_v2_pb2`` registers its messages in a private descriptor pool, not protobuf's
default one, so Keel's server coexists in one process with clients that define the same
``inference`` package (``tritonclient.grpc``, KServe's client).
"""
