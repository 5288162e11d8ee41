"""The engine's default sizes, in a module that imports nothing, so ``settings`` can read them
without loading Dask and Arrow."""

# 32 MiB keeps a task's large arrays at or under glibc's largest heap block (32 MiB), so
# their memory is reused from task to task instead of mapped afresh (measured on 1 GB:
# 8.2 s against 8.8 s with 64 MiB, and 0.55 against 0.97 GB peak).
BLOCK_BYTES = 32 << 20  # input read per map task
BUCKET_BYTES = 32 << 20  # input per reduce task
DEFAULT_MAX_SHARD_BYTES = 500_000_000
# Shuffle pieces (map tasks x buckets) beyond which a map task takes several blocks: 2 M
# pieces is a 16 MB offsets matrix on the client and 2 M ranged reads of scratch.
MAX_SHUFFLE_PIECES = 2_000_000
# A reduce task on object-store scratch takes adjacent buckets until their pieces reach this
# much, and reads each map file once for all of them: a quarter of the GETs with 32 MiB buckets,
# for at most this much more memory per task. Local scratch is memory-mapped: one bucket a task.
REDUCE_READ_BYTES = 128 << 20
