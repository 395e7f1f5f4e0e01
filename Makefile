# Two entry points, each sets itself up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench bench-inference bench-seg bench-det bench-pipeline bench-surface bench-fasteners bench-vibration clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/railwatch demo --out demo_out

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/railfit.py

# about an hour on a 2-core CPU: renders 940 scenes, trains BiSeNetV2 and the FCN baseline
bench-seg: $(STAMP)
	$(BIN)/python benchmarks/track_seg.py

# about 1.5 hours on a 2-core CPU: trains ST-YOLO and YOLOv8s on the scenes of bench-seg
bench-det: $(STAMP)
	$(BIN)/python benchmarks/detector.py --steps 700 --val-every 175

# about a minute: each network as trained against prepared for inference (folded norms, channels-last)
bench-inference: $(STAMP)
	$(BIN)/python benchmarks/inference.py

# a few minutes: generated clips through the whole intrusion pipeline, levels against truth
bench-pipeline: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py

# paper 002 Tables 5-7: 5-fold CV of the modified FCN, FCN-8s and SegNet on both rail types,
# 1500 steps each; over a day on a 2-core CPU (FCN-8s is most of it), minutes on a GPU; resumable: a rerun keeps finished folds
# then where each fold's wrong pixels lie (outline band, row and column phase of the I/4 grid)
bench-surface: $(STAMP)
	$(BIN)/python benchmarks/surface.py
	$(BIN)/python benchmarks/surface_errors.py --type type1
	$(BIN)/python benchmarks/surface_errors.py --type type2

# paper 000 Tables 5 and 7: KD-GAN, its ablations, GANomaly, MemAE and f-AnoGAN on the MNIST protocol, 3 seeds,
# 1000 steps each; about 3 hours on a 2-core CPU
bench-fasteners: $(STAMP)
	$(BIN)/python benchmarks/fasteners_mnist.py --protocol mnist --profile paper --seeds 0,1,2

# paper 001 Tables 2-3 on simulated hammer tests (5 splits, both sites) and the DAS monitor's
# real-time factor on a 10 km fibre; about 25 minutes on a 2-core CPU
bench-vibration: $(STAMP)
	$(BIN)/python benchmarks/vibration.py

clean:
	rm -rf $(VENV) demo_out seg_out det_out surface_out runs .pytest_cache .hypothesis
