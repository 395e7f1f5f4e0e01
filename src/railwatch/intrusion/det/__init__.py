"""Object detection for intrusion monitoring: ST-YOLO and its YOLOv8s baseline (paper 003, section 2.2)."""
