"""CFD ground truth on centerline trees: tree walls, volume meshes, OpenFOAM runs, wall fields.

* :mod:`meshops.cfd.foam`: OpenFOAM environment, case files, running ``simpleFoam``, reading fields;
* :mod:`meshops.cfd.tree`: the :class:`~meshops.cfd.tree.Tree` (branches, radii, topology), its
  validation and the Murray-law flow split;
* :mod:`meshops.cfd.tree_mesh`: the wall as the union of branch lofts (gmsh OpenCASCADE) and the
  tetrahedral volume mesh, converted with ``gmshToFoam``;
* :mod:`meshops.cfd.tree_solve`: one steady laminar simpleFoam run on a tree and its wall fields.

Nothing here imports torch; gmsh is imported inside the functions that need it.
"""
