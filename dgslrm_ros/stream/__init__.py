"""The windowed streaming pipeline, shared by `dgslrm_node` and `dgslrm replay` (no ROS imports).

config.py (PipelineConfig) -> frames.py (camera model, frame preparation) -> pose_buffer.py (pose
sync) -> window_buffer.py (windows) -> pipeline.py (StreamingReconstructor: admission) ->
reconstruction.py (WindowReconstructor: one window, stage by stage; flow_cache.py and sweep_cache.py,
both a window_cache.py PreviousWindowCache, hand it what the previous window already computed) ->
track_registry.py (tracks with stable ids); health.py (the /diagnostics level rule of the node and
replay); benchmark.py measures it.
"""
