"""orbitmq.broker"""
