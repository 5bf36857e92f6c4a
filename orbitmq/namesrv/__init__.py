"""orbitmq.namesrv"""
