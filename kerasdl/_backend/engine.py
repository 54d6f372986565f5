"""The inference engine: a model's forward pass compiled once and reused
(split over the devices under data parallelism), host <-> device copies,
and an epoch of training as one JAX program.
"""

import keras
import numpy as np

from kerasdl._backend.devices import name


def synchronize(x):
    """Blocks until ``x`` (a tensor or nested structure) is computed."""
    backend = name()
    if backend == "jax":
        import jax

        jax.block_until_ready(x)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    else:
        keras.tree.map_structure(
            lambda t: keras.ops.convert_to_numpy(t) if hasattr(t, "shape")
            else t,
            x,
        )
    return x


def compiled_inference(model, prepare=None, finish=None):
    """Returns ``f(x, *extra)``: ``finish(model(prepare(x, *extra)))`` in
    inference mode, compiled once and reused (``jax.jit`` over
    ``stateless_call`` under JAX, ``tf.function`` under TensorFlow; eager
    under torch). The result stays on the device; fetch it with
    ``to_host``.

    Under data parallelism (``kerasdl.data_parallel``) the rows of ``x``
    and of the extras are split over the devices and the result holds
    them in order: under JAX when a distribution is active (the weights
    are replicated once if the model was built outside it), under
    TensorFlow when the model was built in a ``MirroredStrategy`` scope.
    Rows are padded to a multiple of the device count and cut back.
    """
    backend = name()
    if backend == "jax":
        return _jax_inference(model, prepare, finish)

    def forward(x, *extra):
        if prepare is not None:
            x = prepare(x, *extra)
        y = model(x, training=False)
        return y if finish is None else finish(y)

    if backend == "tensorflow":
        return _tf_inference(model, forward)
    if backend == "torch":
        import torch

        def no_grad(x, *extra):
            with torch.no_grad():
                return forward(x, *extra)

        return no_grad
    return forward


def _jax_inference(model, prepare, finish):
    import jax

    def pure(tv, ntv, x, *extra):
        if prepare is not None:
            x = prepare(x, *extra)
        y, _ = model.stateless_call(tv, ntv, x, training=False)
        return y if finish is None else finish(y)

    jitted = jax.jit(pure)
    copies = {"from": None, "to": None}

    def replicated(values, sharding):
        if all(v.sharding.is_fully_replicated
               and v.sharding.device_set == sharding.device_set
               for v in values):
            return values
        if copies["from"] is None or len(copies["from"]) != len(values) or \
                any(a is not b for a, b in zip(copies["from"], values)):
            copies["from"] = values
            copies["to"] = [jax.device_put(v, sharding) for v in values]
        return copies["to"]

    def call(x, *extra):  # current weights, read at every call
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        placement = _jax_placement()
        if placement is None:
            return jitted(tv, ntv, x, *extra)
        rows, replicas = placement
        n = x.shape[0]
        weights = replicated(tv + ntv, replicas)
        y = jitted(weights[:len(tv)], weights[len(tv):],
                   _jax_rows(x, rows), *[_jax_rows(e, rows) for e in extra])
        return y if y.shape[0] == n else y[:n]

    return call


def _jax_placement():
    """(rows split over the devices, replicated) shardings of the active
    distribution's local devices, or None without one."""
    dist = keras.distribution.distribution()
    if dist is None:
        return None
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec

    mesh = dist.device_mesh.backend_mesh
    if mesh.devices.size == 1:
        return None
    if jax.process_count() > 1:
        raise ValueError(
            "Inference split over devices runs within one process; this JAX "
            f"job has {jax.process_count()} processes. Compute features in "
            "each process over its own images without a distribution.")
    return (NamedSharding(mesh, PartitionSpec(dist.batch_dim_name)),
            NamedSharding(mesh, PartitionSpec()))


def _jax_rows(x, sharding):
    """``x`` with its rows padded to a multiple of the devices and split
    over them (nothing is copied when it already is)."""
    import jax

    devices = len(sharding.device_set)
    pad = -x.shape[0] % devices
    if pad:
        lib = np if isinstance(x, np.ndarray) else jax.numpy
        x = lib.concatenate([x, lib.zeros((pad,) + x.shape[1:], x.dtype)])
    if getattr(x, "sharding", None) == sharding:
        return x
    return jax.device_put(x, sharding)


def _tf_inference(model, forward):
    import tensorflow as tf

    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None or strategy.num_replicas_in_sync == 1 or not \
            isinstance(strategy, tf.distribute.MirroredStrategy):
        return tf.function(forward, reduce_retracing=True)
    replicas = strategy.num_replicas_in_sync
    run = tf.function(lambda *args: strategy.run(forward, args=args),
                      reduce_retracing=True)

    def call(x, *extra):
        n = int(x.shape[0])
        per = -(-n // replicas)

        def split(a):
            a = tf.convert_to_tensor(a)
            if per * replicas != n:
                a = tf.concat([a, tf.zeros([per * replicas - n]
                                           + a.shape[1:], a.dtype)], 0)
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: a[ctx.replica_id_in_sync_group * per:
                              (ctx.replica_id_in_sync_group + 1) * per])

        out = run(split(x), *[split(e) for e in extra])
        return tf.concat(strategy.experimental_local_results(out), 0)[:n]

    return call


_JAX_COPY = []


def copies(values):
    """Copies of the variable values ``values`` for assigning to other
    variables. Under JAX they are made in one compiled call: a train step
    donates its state, so two variables must never share a buffer.
    Elsewhere ``assign`` copies into the variable's own storage and the
    values are returned as they are."""
    values = list(values)
    if name() != "jax" or not values:
        return values
    if not _JAX_COPY:
        import jax

        _JAX_COPY.append(jax.jit(
            lambda xs: [jax.numpy.copy(x) for x in xs]))
    return _JAX_COPY[0](values)


def to_device(x):
    """Starts copying a host array to the accelerator (asynchronously where
    the backend allows) and returns the device array; under an active JAX
    distribution its rows are split over the devices (padded to a
    multiple of their number)."""
    if name() == "jax":
        import jax

        placement = _jax_placement()
        if placement is None:
            return jax.device_put(x)
        return _jax_rows(x, placement[0])
    return keras.ops.convert_to_tensor(x)


def start_fetch(y):
    """Starts copying a device result to the host without waiting.

    Under JAX on an accelerator the result is copied into page-locked
    ("pinned_host") memory: a copy into ordinary host memory is staged
    and runs at a few GB/s shared by all devices (on two H200 GPUs it
    held ``precompute`` at one GPU's speed), a pinned one at the bus'
    speed. Where that memory kind is missing, the copy is the plain
    asynchronous one. Fetch the result with ``to_host``.
    """
    if name() != "jax" or not hasattr(y, "copy_to_host_async"):
        return y
    pinned = _pinned_sharding(y)
    if pinned is None:
        y.copy_to_host_async()
        return y
    import jax

    return jax.device_put(y, pinned)


def _pinned_sharding(y):
    """``y``'s sharding in pinned host memory, or None on CPU devices or
    where the runtime has no such memory."""
    sharding = getattr(y, "sharding", None)
    devices = getattr(sharding, "device_set", ())
    if not devices or any(d.platform == "cpu" for d in devices):
        return None
    try:
        kinds = {m.kind for d in devices for m in d.addressable_memories()}
    except (AttributeError, NotImplementedError, RuntimeError):
        return None  # a runtime without memory kinds
    if "pinned_host" not in kinds:
        return None
    return sharding.with_memory_kind("pinned_host")


def to_host(y):
    """A device result as a numpy array (waits for it)."""
    return keras.ops.convert_to_numpy(y)


def epoch_program(model, n, batch_size):
    """One epoch of ``model.train_step`` as one compiled JAX program.

    Returns ``run(state, seed, epoch, x, y) -> (state, mean loss)``: the
    rows are shuffled with a key made from ``seed`` and ``epoch``, every
    full batch is trained under ``jax.lax.scan`` and the last partial
    batch after it. ``state`` is the tuple of the model's trainable,
    non-trainable, optimizer and metrics variable values.

    Raises:
        ValueError: the backend is not JAX.
    """
    if name() != "jax":
        raise ValueError(f"epoch_program needs the JAX backend; the active "
                         f"backend is {name()!r}.")
    import jax
    import jax.numpy as jnp

    steps, rem = divmod(n, batch_size)

    def take(x, y, index):
        return (keras.tree.map_structure(lambda a: a[index], x), y[index],
                None)

    def epoch(state, key, x, y):
        perm = jax.random.permutation(key, n)
        full = perm[:steps * batch_size].reshape(steps, batch_size)

        def body(state, index):
            logs, state = model.train_step(state, take(x, y, index))
            return state, logs["loss"]

        state, losses = jax.lax.scan(body, state, full)
        total = jnp.sum(losses) * batch_size
        if rem:
            logs, state = model.train_step(
                state, take(x, y, perm[steps * batch_size:]))
            total = total + logs["loss"] * rem
        return state, total / n

    jitted = jax.jit(epoch)

    def run(state, seed, index, x, y):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
        return jitted(state, key, x, y)

    run.compiled = jitted
    return run
