"""tcx.datamodules"""
