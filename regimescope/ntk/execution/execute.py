"""Carrying out an :class:`~regimescope.ntk.planning.plan.NtkPlan`: collection passes, block kernels, generic rows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from regimescope import batch
from regimescope.ntk.execution.collect import LayoutChanged, Watched, collect
from regimescope.ntk.execution.jacobian import BlockRows, FullBatchRows, PerSampleRows, rows_kernel
from regimescope.ntk.execution.layer_kernel import block_gram, block_per_sample
from regimescope.ntk.execution.pairwise import KernelSink, Layout, assemble
from regimescope.ntk.execution.sketch import CountSketch
from regimescope.ntk.model.blocks import ParamBlock
from regimescope.ntk.model.model_call import ModelCall
from regimescope.ntk.planning.costs import Form
from regimescope.ntk.planning.plan import BlockPlan, NtkPlan, PlanRequest
from regimescope.ntk.rules.base import LayerData, LayerRule
from regimescope.progress import Progress

logger = logging.getLogger(__name__)

RowsFn = Callable[[slice, slice], BlockRows]


def _slicer(store: BlockRows) -> RowsFn:
    """Rows read from stored (sketched) rows of all examples and outputs."""
    return lambda s, o: {name: [r[o, s] for r in parts] for name, parts in store.items()}


@dataclass
class Run:
    """One computation: the model call, the prepared sets, the request, its plan and where kernels go.

    Attributes:
        call: The functional model.
        sets: Prepared inputs (one set for a kernel of ``x1`` with itself).
        req: The planning request.
        plan: The plan.
        modules: ``module name -> (module, rule)`` of the layers the covered blocks use.
        sink: Kernel accumulator.
        seed: Sketch seed.
    """

    call: ModelCall
    sets: list[batch.Inputs]
    req: PlanRequest
    plan: NtkPlan
    modules: dict[str, tuple[nn.Module, LayerRule]]
    sink: KernelSink
    seed: int

    @property
    def k(self) -> int:
        """Outputs."""
        return self.req.k

    def _sketches(self, blocks: list[ParamBlock]) -> dict[tuple[str, int], CountSketch]:
        """A sketch for every parameter of ``blocks`` with more than ``m`` entries, keyed by (block, index)."""
        m = self.req.sketch
        device = next(iter(self.call.params.values())).device
        return {
            (b.name, index): CountSketch(self.req.params[name], m, self.seed, name, self.call.dtype, device)
            for b in blocks
            for index, name in enumerate(b.param_names)
            if m is not None and self.req.params[name] > m
        }

    def _sketched_rows(self, rows: RowsFn, n: int, sample_chunk: int, output_chunk: int,
                       sketches: dict[tuple[str, int], CountSketch]) -> BlockRows:
        """Rows of all ``n`` examples and ``k`` outputs, each parameter sketched (when it has a sketch)."""
        store: BlockRows = {}
        for s0 in range(0, n, sample_chunk):
            for o0 in range(0, self.k, output_chunk):
                s, o = slice(s0, min(s0 + sample_chunk, n)), slice(o0, min(o0 + output_chunk, self.k))
                for name, parts in rows(s, o).items():
                    for index, part in enumerate(parts):
                        sketch = sketches.get((name, index))
                        part = sketch(part) if sketch is not None else part
                        if len(store.setdefault(name, [])) <= index:
                            store[name].append(part.new_zeros(self.k, n, part.shape[2]))
                        store[name][index][o, s] = part
        return store

    # --------------------------------------------------------------------------------------- layer rules
    def _layer_rows(self, block: ParamBlock, data: dict[str, LayerData]) -> RowsFn:
        def rows(s: slice, o: slice) -> BlockRows:
            chunk = {name: data[name].select(s, o) for name in block.use_modules}
            return {block.name: block_per_sample(block, self.modules, chunk)}

        return rows

    def _gram_block(self, block: ParamBlock, bp: BlockPlan, da: dict[str, LayerData], db: dict[str, LayerData],
                    layout: Layout) -> None:
        """:attr:`Form.GRAM`: the Gram-Hadamard form from the owner layer's data, no per-sample gradient."""
        owner = block.use_modules[0]
        rule = self.modules[owner][1]
        assemble(
            self.sink, layout, bp.sample_chunk, bp.output_chunk,
            lambda s, o: da[owner].select(s, o), lambda s, o: db[owner].select(s, o),
            lambda ra, rb, full: {block.name: block_gram(block, rule, ra, rb, full)},
        )

    def _per_sample_block(self, block: ParamBlock, bp: BlockPlan, da: dict[str, LayerData],
                          db: dict[str, LayerData], layout: Layout) -> None:
        """:attr:`Form.PER_SAMPLE`: per-sample gradients formed from the layer data, then their Gram."""
        rows_a, rows_b = self._layer_rows(block, da), self._layer_rows(block, db)
        assemble(self.sink, layout, bp.sample_chunk, bp.output_chunk, rows_a, rows_b, rows_kernel)

    def _sketched_block(self, block: ParamBlock, bp: BlockPlan, da: dict[str, LayerData],
                        db: dict[str, LayerData], layout: Layout) -> None:
        """:attr:`Form.SKETCH`: per-sample gradients from the layer data, CountSketched, then their Gram."""
        rows_a, rows_b = self._layer_rows(block, da), self._layer_rows(block, db)
        sketches = self._sketches([block])
        sa = self._sketched_rows(rows_a, layout.n1, bp.sample_chunk, bp.output_chunk, sketches)
        sb = sa if layout.symmetric else self._sketched_rows(rows_b, layout.n2, bp.sample_chunk,
                                                             bp.output_chunk, sketches)
        assemble(self.sink, layout, bp.sample_chunk, bp.output_chunk, _slicer(sa), _slicer(sb), rows_kernel)

    def _collect(self, watched: dict[str, Watched], leaves: list[str], which: int, rows: slice
                 ) -> dict[str, LayerData]:
        profile = self.req.profiles[which]
        return collect(self.call, watched, leaves, batch.select(self.sets[min(which, len(self.sets) - 1)], rows), profile.layers, self.k,
                       self.plan.collect_sample_chunk, self.plan.collect_output_chunk, profile.expanded)

    def layer_group(self, group: list[ParamBlock]) -> None:
        """Collect the group's layer data block of examples by block, and add each block's kernel."""
        names = list(dict.fromkeys(name for b in group for name in b.use_modules))
        needed: dict[str, set[str]] = {name: set() for name in names}
        for b in group:
            for uses in b.uses:
                for use in uses:
                    needed[use.module_name].add(use.local_name)
        watched = {
            name: Watched(self.modules[name][0], self.modules[name][1], tuple(sorted(needed[name])),
                          per_sample=name in self.plan.per_sample_layers)
            for name in names
        }
        leaves = [name for b in group for name in b.param_names]
        plans = {bp.name: bp for bp in self.plan.blocks}
        symmetric = self.req.symmetric
        n1, n2 = self.req.n
        sb1, sb2 = self.plan.sample_blocks
        blocks_1 = [slice(s, min(s + sb1, n1)) for s in range(0, n1, sb1)]
        blocks_2 = blocks_1 if symmetric else [slice(s, min(s + sb2, n2)) for s in range(0, n2, sb2)]
        kept: dict[str, LayerData] | None = None
        for ia, a in enumerate(blocks_1):
            da = self._collect(watched, leaves, 0, a)
            for ib, b in enumerate(blocks_2):
                if symmetric and ib < ia:
                    continue
                if symmetric and ib == ia:
                    db = da
                elif len(blocks_2) == 1:
                    kept = kept if kept is not None else self._collect(watched, leaves, 1, b)
                    db = kept
                else:
                    db = self._collect(watched, leaves, 1, b)
                layout = Layout(
                    n1=a.stop - a.start, n2=b.stop - b.start, k=self.k, full=self.req.full,
                    symmetric=symmetric and ia == ib, mirror=symmetric and ia != ib,
                    offset1=a.start, offset2=b.start,
                )
                for block in group:
                    bp = plans[block.name]
                    LAYER_FORMS[bp.form](self, block, bp, da, db, layout)

    # ------------------------------------------------------------------------------------------ generic
    def generic_group(self, group: list[ParamBlock], form: Form) -> None:
        """Add the kernels of a group of generic blocks from ``torch.func`` Jacobian rows."""
        maker = GENERIC_FORMS[form]
        rows_a: RowsFn = maker(self.call, group, self.sets[0])
        rows_b: RowsFn = rows_a if self.req.symmetric else maker(self.call, group, self.sets[-1])
        n1, n2 = self.req.n
        chunk, outputs = self.plan.generic_sample_chunk, self.plan.generic_output_chunk
        if self.req.sketch is not None:
            sketches = self._sketches(group)
            sa = self._sketched_rows(rows_a, n1, chunk, outputs, sketches)
            sb = sa if self.req.symmetric else self._sketched_rows(rows_b, n2, chunk, outputs, sketches)
            rows_a, rows_b = _slicer(sa), _slicer(sb)
            chunk, outputs = max(n1, n2), self.k
        layout = Layout(n1=n1, n2=n2, k=self.k, full=self.req.full, symmetric=self.req.symmetric)
        assemble(self.sink, layout, chunk, outputs, rows_a, rows_b, rows_kernel)


LayerForm = Callable[[Run, ParamBlock, BlockPlan, dict[str, LayerData], dict[str, LayerData], Layout], None]
"""``(run, block, block plan, layer data of set 1, layer data of set 2, layout)``: adds the block's kernel."""

LAYER_FORMS: dict[Form, LayerForm] = {
    Form.GRAM: Run._gram_block,
    Form.PER_SAMPLE: Run._per_sample_block,
    Form.SKETCH: Run._sketched_block,
}
"""How each layer form computes a covered block's kernel from the collected layer data."""

GENERIC_FORMS: dict[Form, type[PerSampleRows] | type[FullBatchRows]] = {
    Form.JACOBIAN: PerSampleRows,
    Form.FULL_BATCH: FullBatchRows,
}
"""The Jacobian rows each generic form computes a group of blocks from."""


def execute(run: Run, blocks: list[ParamBlock], progress: Progress) -> None:
    """Compute every block of ``blocks`` into ``run.sink`` as ``run.plan`` says, counting groups on ``progress``."""
    with progress:
        _execute(run, blocks, progress)


def _execute(run: Run, blocks: list[ParamBlock], progress: Progress) -> None:
    by_name = {b.name: b for b in blocks}
    fallback: list[ParamBlock] = []
    for names in run.plan.layer_groups:
        group = [by_name[name] for name in names]
        try:
            run.layer_group(group)
            progress.update(detail=names[0])
        except LayoutChanged as error:
            if run.plan.sample_blocks != run.req.n:
                raise RuntimeError(
                    f"Layers {error.names} stopped seeing the batch as their leading dimension part-way through "
                    "the computation. Pass implementation='per_sample' for this model."
                ) from error
            logger.info("Layers %s do not see the batch first at this chunk size; generic path.", error.names)
            fallback.extend(group)
            progress.update(detail=names[0])
    forms = {bp.name: bp.form for bp in run.plan.blocks}
    for names in run.plan.generic_groups:
        run.generic_group([by_name[name] for name in names], forms[names[0]])
        progress.update(detail=names[0])
    if fallback:
        run.generic_group(fallback, Form.JACOBIAN)
